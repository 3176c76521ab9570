// flexnode-onboarding: everything the service needs in one resource group, deployed with `azd up` (azure.yaml).
// Subscription scope, so the resource group is part of the template (azd convention: rg-<environment>, tagged
// azd-env-name). Pools (Arc resource groups, AKS clusters) are added afterwards with pool.bicep.
// Declared resources only (no registry modules: they cannot be restored offline); Azure Verified Modules' naming and
// parameter conventions are followed where they apply.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; also seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying user or principal (azd sets AZURE_PRINCIPAL_ID): gets Key Vault Secrets Officer on the vault so the postprovision hook can store the generated keys. Empty = no grant.')
param principalId string = ''

@allowed(['User', 'Group', 'ServicePrincipal'])
param principalType string = 'User'

@allowed(['20', '22'])
@description('Node.js major version of the Flex Consumption runtime (package.json engines: 20.19+ or 22+).')
param nodeVersion string = '20'

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@minValue(0)
@maxValue(10)
@description('Always-ready instances for each of the `durable` and `function:nodeResults` scale groups (0 = scale both from zero).')
param alwaysReadyInstances int = 1

@allowed(['AzureStorage', 'DurableTaskScheduler'])
@description('Durable Functions backend: the storage account (default), or a Durable Task Scheduler (see infra/README.md before choosing it).')
param durableBackend string = 'AzureStorage'

@allowed(['Consumption', 'Dedicated'])
param durableTaskSchedulerSku string = 'Consumption'

// At least 1: modules/function-app.bicep (the service's purgeHistory timer) refuses 0, and would fail the deployment.
@minValue(1)
@maxValue(90)
@description('Days finished orchestrations are kept before they are purged (Durable Task Scheduler autopurge).')
param durableHistoryRetentionDays int = 30

@allowed(['Basic', 'Standard', 'Premium'])
param serviceBusSku string = 'Standard'

@description('Service Bus local (SAS) authentication. Nodes have no Entra identity and authenticate to their mailbox with SAS tokens minted from the namespace rules, so this must stay true; it is a parameter only so the choice is explicit (infra/README.md: policy exemption).')
param serviceBusLocalAuth bool = true

@description('ARTIFACT_CATALOG (pinned node artifacts, JSON), base64-encoded so it survives azd parameter substitution. Empty = not configured yet.')
param artifactCatalogBase64 string = ''

@description('Client id of the Entra app registration whose app roles (FlexNode.Admin, FlexNode.Reader) guard the admin API. Empty = App Service authentication off (the admin API then refuses every call).')
param adminAuthClientId string = ''

@description('Key Vault purge protection. Off by default so `azd down --purge` can remove the vault; turn it on for production.')
param keyVaultPurgeProtection bool = false

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'modules/app.bicep' = {
  name: 'flexnode-app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyInstances: alwaysReadyInstances
    durableBackend: durableBackend
    durableTaskSchedulerSku: durableTaskSchedulerSku
    durableHistoryRetentionDays: durableHistoryRetentionDays
    serviceBusSku: serviceBusSku
    serviceBusLocalAuth: serviceBusLocalAuth
    artifactCatalog: empty(artifactCatalogBase64) ? '' : base64ToString(artifactCatalogBase64)
    adminAuthClientId: adminAuthClientId
    keyVaultPurgeProtection: keyVaultPurgeProtection
  }
}

// azd stores these in the environment (.azure/<env>/.env); the hooks and `infra/README.md` use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_KEY_VAULT_NAME string = app.outputs.keyVaultName
output AZURE_KEY_VAULT_ENDPOINT string = app.outputs.keyVaultUri
output FLEXNODE_FUNCTION_APP_ID string = app.outputs.functionAppId
output FLEXNODE_API_BASE_URL string = 'https://${app.outputs.functionAppHostName}/api'
output FLEXNODE_SERVICE_PRINCIPAL_ID string = app.outputs.servicePrincipalId
output FLEXNODE_SERVICEBUS_NAMESPACE string = app.outputs.serviceBusNamespace
output FLEXNODE_DURABLE_TASK_HUB string = app.outputs.durableTaskHub
