// The service's secrets, which the function app reads as Key Vault references (@Microsoft.KeyVault(SecretUri=...))
// resolved by the platform with the app's user-assigned identity (Key Vault Secrets User, service-roles.bicep):
//   mailbox-listen-key, mailbox-send-key  the SAS keys of the two node mailbox rules, copied here by this template
//                                         (listKeys at deployment time; re-provision after rotating a rule's key);
//   service-signing-key, secrets-key      the Ed25519 envelope-signing key and the 32-byte sealing key, which Bicep
//                                         cannot generate: azd's postprovision hook (infra/hooks/ensure-secrets.ts)
//                                         creates them once, if absent.
// RBAC authorization only (no access policies). Flex Consumption resolves references only from vaults reachable
// over the public endpoint, so the vault is not network-restricted.

param location string
param tags object
param name string
param purgeProtection bool
param serviceBusName string
param listenRuleName string
param sendRuleName string

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // ARM rejects `false` once set; null leaves it off.
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: serviceBusName
}

resource listenRule 'Microsoft.ServiceBus/namespaces/authorizationRules@2026-01-01' existing = {
  parent: namespace
  name: listenRuleName
}

resource sendRule 'Microsoft.ServiceBus/namespaces/authorizationRules@2026-01-01' existing = {
  parent: namespace
  name: sendRuleName
}

resource listenKey 'Microsoft.KeyVault/vaults/secrets@2026-05-15' = {
  parent: vault
  name: 'mailbox-listen-key'
  properties: { value: listenRule.listKeys().primaryKey, contentType: 'Service Bus SAS key (Listen)' }
}

resource sendKey 'Microsoft.KeyVault/vaults/secrets@2026-05-15' = {
  parent: vault
  name: 'mailbox-send-key'
  properties: { value: sendRule.listKeys().primaryKey, contentType: 'Service Bus SAS key (Send)' }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
output mailboxListenKeyUri string = listenKey.properties.secretUri
output mailboxSendKeyUri string = sendKey.properties.secretUri
