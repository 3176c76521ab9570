// The node mailbox namespace: the shared results queues, made here, and one queue per node, made and deleted at run
// time by the service through the Service Bus data plane (orchestrations/mailbox). Nodes have no Entra identity: they
// authenticate with SAS tokens the service mints from two namespace rules, one with Listen only and one with Send
// only, so the namespace must accept local (SAS) authentication. See infra/README.md "Service Bus local
// authentication" for the Azure Policy exemption this needs where the built-in deny policy is assigned.

param location string
param tags object
param name string
@allowed(['Basic', 'Standard', 'Premium'])
param sku string
@description('Must stay true while nodes authenticate with SAS. The choice is explicit so a policy review sees it.')
param localAuthEnabled bool
param listenRuleName string
param sendRuleName string

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: sku, tier: sku }
  properties: {
    disableLocalAuth: !localAuthEnabled
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// Nodes send their signed step results here (Send SAS scoped to this queue); the nodeResults function reads it.
resource resultsQueue 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: namespace
  name: 'node-results'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P1D'
    deadLetteringOnMessageExpiration: true
  }
}

// Results the service refused (bad signature, unknown node, ...), kept with their reason for an operator.
resource rejectedQueue 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: namespace
  name: 'rejected-node-results'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: false
  }
}

// MAILBOX_LISTEN_RULE: signs each node's receive token, scoped by the service to that node's own queue.
resource listenRule 'Microsoft.ServiceBus/namespaces/authorizationRules@2026-01-01' = {
  parent: namespace
  name: listenRuleName
  properties: { rights: ['Listen'] }
}

// MAILBOX_SEND_RULE: signs each node's send token, scoped by the service to node-results.
resource sendRule 'Microsoft.ServiceBus/namespaces/authorizationRules@2026-01-01' = {
  parent: namespace
  name: sendRuleName
  properties: { rights: ['Send'] }
}

output name string = namespace.name
// The host of serviceBusEndpoint (https://<name>.servicebus.windows.net:443/), without naming the cloud's domain.
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
output listenRuleName string = listenRule.name
output sendRuleName string = sendRule.name
