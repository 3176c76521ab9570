// Every role the service's identity holds on the resources of this deployment, each at the narrowest scope that
// works, with the code path that needs it. (Pool scopes — Arc resource groups and AKS clusters — are granted by
// pool.bicep.) The deploying user gets Key Vault Secrets Officer on the vault only, for the postprovision hook.
// Assignment names are guid(scope, identity resource id, role): stable across re-deployments.

import { builtInRoles } from 'roles.bicep'

param identityName string
param storageName string
param serviceBusName string
param keyVaultName string
param applicationInsightsName string
param eventGridTopicName string
@description('Durable Task Scheduler name, or empty when the Azure Storage backend is used.')
param durableTaskSchedulerName string
@description('Object id of the deploying user or principal (azd: AZURE_PRINCIPAL_ID); empty = none.')
param deployerPrincipalId string
@allowed(['User', 'Group', 'ServicePrincipal'])
param deployerPrincipalType string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2026-09-01' existing = {
  name: storageName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: serviceBusName
}

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource eventGridTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: eventGridTopicName
}

resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' existing = if (!empty(durableTaskSchedulerName)) {
  name: durableTaskSchedulerName
}

// Functions host storage through AzureWebJobsStorage__*: host keys, timer schedule status and singleton leases (blob),
// the Durable Azure Storage backend's history/instance blobs, and Flex Consumption's deployment package. The Functions
// host documents Storage Blob Data Owner for identity-based host storage.
resource storageBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, builtInRoles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Durable Azure Storage backend: control and work-item queues of the task hub (host.json durableTask).
resource storageQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, builtInRoles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The registry (orchestrations/registry: pools, tokens, nodes, audit, nonces, claims; REGISTRY_TABLE_ENDPOINT, which
// also creates its tables on start) and the Durable Azure Storage backend's History and Instances tables.
resource storageTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, builtInRoles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// orchestrations/mailbox: creates and deletes a queue per node through the Service Bus data plane
// (ServiceBusAdministrationClient), sends step envelopes, and the nodeResults trigger receives from node-results.
// Data Owner is the only built-in Service Bus data role with entity management (Microsoft.ServiceBus/*): Data Sender
// and Data Receiver can send or receive on existing entities but cannot create or delete a queue, and the queues are
// made per node at run time, so they cannot be declared here instead (nor through ARM: its write budget is kept for
// Arc machines and role grants).
resource serviceBusOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, identity.id, builtInRoles.serviceBusDataOwner)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.serviceBusDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// orchestrations/clients/events: the lifecycle CloudEvents (LIFECYCLE_EVENTS_ENDPOINT), published with the identity;
// Data Sender is the built-in role with the send data action only.
resource eventGridSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventGridTopic.id, identity.id, builtInRoles.eventGridDataSender)
  scope: eventGridTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.eventGridDataSender)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The platform resolves the app settings' Key Vault references (MAILBOX_*_KEY, SERVICE_SIGNING_KEY, SECRETS_KEY)
// with the app's keyVaultReferenceIdentity.
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, builtInRoles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The Functions host sends telemetry with APPLICATIONINSIGHTS_AUTHENTICATION_STRING (Entra ingestion).
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identity.id, builtInRoles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Durable Task Scheduler backend only: the Durable extension's orchestrations, activities and client operations.
resource durableTaskData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(durableTaskSchedulerName)) {
  name: guid(scheduler.id, identity.id, builtInRoles.durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.durableTaskDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The deploying user writes service-signing-key and secrets-key once (infra/hooks/ensure-secrets.ts).
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, builtInRoles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
