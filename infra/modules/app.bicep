// The service's resources in its resource group (main.bicep): identity, monitoring, storage, Service Bus, Key Vault,
// optional Durable Task Scheduler, the Flex Consumption app, and the identity's roles on them.

param location string
param tags object
param resourceToken string
param deployerPrincipalId string
param deployerPrincipalType string
param nodeVersion string
param instanceMemoryMB int
param maximumInstanceCount int
param alwaysReadyInstances int
param durableBackend string
param durableTaskSchedulerSku string
param durableHistoryRetentionDays int
param serviceBusSku string
param serviceBusLocalAuth bool
param artifactCatalog string
param adminAuthClientId string
param keyVaultPurgeProtection bool

// One task hub per environment (DURABLE_TASK_HUB: 3-45 letters or digits, letter first), so environments sharing a
// storage account or scheduler never share state.
var durableTaskHub = 'FlexNode${take(resourceToken, 10)}'
var useScheduler = durableBackend == 'DurableTaskScheduler'

// Names are computed here, not taken from module outputs, so what-if can predict every resource id.
var names = {
  storage: 'st${resourceToken}'
  serviceBus: 'sb-${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  applicationInsights: 'appi-${resourceToken}'
  scheduler: 'dts-${resourceToken}'
  eventGridTopic: 'evgt-${resourceToken}'
  listenRule: 'flexnode-node-listen'
  sendRule: 'flexnode-node-send'
}

// The one identity of the service: host storage, Durable, registry, Service Bus, Key Vault references, telemetry,
// deployment package, and ARM (Arc machines, role grants, AKS) on the pools' scopes (pool.bicep).
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

module monitoring 'monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: names.applicationInsights
  }
}

module storage 'storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: names.storage
    deploymentContainerName: 'app-package'
  }
}

module serviceBus 'service-bus.bicep' = {
  name: 'service-bus'
  params: {
    location: location
    tags: tags
    name: names.serviceBus
    sku: serviceBusSku
    localAuthEnabled: serviceBusLocalAuth
    listenRuleName: names.listenRule
    sendRuleName: names.sendRule
  }
}

module keyVault 'key-vault.bicep' = {
  name: 'key-vault'
  dependsOn: [serviceBus]
  params: {
    location: location
    tags: tags
    name: names.keyVault
    purgeProtection: keyVaultPurgeProtection
    serviceBusName: names.serviceBus
    listenRuleName: names.listenRule
    sendRuleName: names.sendRule
  }
}

// The modules above create the workspace, vault and namespace under these names (no outputs to depend on implicitly).
module diagnostics 'diagnostics.bicep' = {
  name: 'diagnostics'
  dependsOn: [monitoring, keyVault, serviceBus]
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    keyVaultName: names.keyVault
    serviceBusName: names.serviceBus
  }
}

module eventGrid 'event-grid.bicep' = {
  name: 'event-grid'
  params: {
    location: location
    tags: tags
    name: names.eventGridTopic
  }
}

module scheduler 'durable-task-scheduler.bicep' = if (useScheduler) {
  name: 'durable-task-scheduler'
  params: {
    location: location
    tags: tags
    name: names.scheduler
    taskHubName: durableTaskHub
    sku: durableTaskSchedulerSku
    historyRetentionDays: durableHistoryRetentionDays
  }
}

module roles 'service-roles.bicep' = {
  name: 'service-roles'
  dependsOn: [storage, serviceBus, keyVault, monitoring, scheduler, eventGrid]
  params: {
    identityName: identity.name
    storageName: names.storage
    serviceBusName: names.serviceBus
    keyVaultName: names.keyVault
    applicationInsightsName: names.applicationInsights
    eventGridTopicName: names.eventGridTopic
    durableTaskSchedulerName: useScheduler ? names.scheduler : ''
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module functionApp 'function-app.bicep' = {
  name: 'function-app'
  // The app starts resolving Key Vault references and reaching storage as soon as it exists: grant first.
  dependsOn: [roles]
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    appName: 'func-${resourceToken}'
    identityName: identity.name
    storageName: names.storage
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    tableEndpoint: storage.outputs.tableEndpoint
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    listenRuleName: names.listenRule
    sendRuleName: names.sendRule
    keyVaultUri: keyVault.outputs.uri
    mailboxListenKeyUri: keyVault.outputs.mailboxListenKeyUri
    mailboxSendKeyUri: keyVault.outputs.mailboxSendKeyUri
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    lifecycleEventsEndpoint: eventGrid.outputs.endpoint
    durableTaskHub: durableTaskHub
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useScheduler ? scheduler!.outputs.endpoint : ''
    durableHistoryRetentionDays: durableHistoryRetentionDays
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyInstances: alwaysReadyInstances
    artifactCatalog: artifactCatalog
    adminAuthClientId: adminAuthClientId
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppId string = functionApp.outputs.id
output functionAppHostName string = functionApp.outputs.defaultHostName
output servicePrincipalId string = identity.properties.principalId
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output durableTaskHub string = durableTaskHub
