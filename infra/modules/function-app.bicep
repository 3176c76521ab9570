// The Flex Consumption function app (plan FC1) running the service (package.json main: dist/functions/index.js),
// with its user-assigned identity for everything: host storage, Durable task hub, registry tables, Service Bus,
// Key Vault references, Application Insights and the deployment package.
//
// Every app setting the app gets is written here; `Microsoft.Web/sites/config/appsettings` replaces the whole set on
// each provision, so a setting made by hand in the portal would not survive `azd provision`. The infra tests check
// the set against orchestrations/settings.ts (SettingsSchema) and an explicit allow-list of host-read settings.

param location string
param tags object
param planName string
param appName string
param identityName string
param storageName string
param deploymentContainerUrl string
param tableEndpoint string
param serviceBusNamespace string
param listenRuleName string
param sendRuleName string
param keyVaultUri string
param mailboxListenKeyUri string
param mailboxSendKeyUri string
param applicationInsightsConnectionString string
param lifecycleEventsEndpoint string
param durableTaskHub string
@allowed(['AzureStorage', 'DurableTaskScheduler'])
param durableBackend string
param durableTaskSchedulerEndpoint string
@description('Days a finished saga\'s Durable history is kept before the daily purge (the service\'s purgeHistory timer).')
@minValue(1)
@maxValue(3650)
param durableHistoryRetentionDays int
@allowed(['20', '22'])
param nodeVersion string
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int
@minValue(0)
param alwaysReadyInstances int
param artifactCatalog string
param adminAuthClientId string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: identityName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

// Key Vault reference for a secret by name, versionless: the platform resolves the latest version (and re-reads it
// within 24 hours of a rotation, or at once on a restart).
func kvRef(uri string) string => '@Microsoft.KeyVault(SecretUri=${uri})'

var durableTaskSchedulerSettings = durableBackend == 'DurableTaskScheduler'
  ? {
      // host.json names the Azure Storage provider; these host-configuration overrides switch the Durable extension
      // to the Durable Task Scheduler without a second host.json (infra/README.md shows the host.json variant).
      AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
      AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
      DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}'
    }
  : {}

// The Node worker's V8 flags, from infra/node-worker-arguments.txt (the benchmarks start the process that runs the
// service with the same file's flags, bench/support/main.ts). A 64 MiB semi-space from the start instead of V8's
// default (up to 16, grown on demand): enrolment allocates heavily (an Azure SDK pipeline per registry request), the
// default young generation fills every few enrolments, and an instance scaled out for a burst starts cold. At
// concurrency 32 it took ~15 % off the CPU per enrolment and a quarter off p99 (bench/README.md). The young
// generation is three semi-spaces, 192 MiB held from start-up: only on instances of 2 GiB and more.
var nodeWorkerSettings = instanceMemoryMB >= 2048 ? { languageWorkers__node__arguments: trim(loadTextContent('../node-worker-arguments.txt')) } : {}

var appSettings = union(
  {
    // Functions host storage (and the Durable Azure Storage backend: host.json connectionStringName
    // AzureWebJobsStorage), identity-based with the user-assigned identity.
    AzureWebJobsStorage__accountName: storageName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    // Telemetry: Entra-authenticated ingestion only (the component has local auth disabled).
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    // The service's own settings (orchestrations/settings.ts).
    DURABLE_TASK_HUB: durableTaskHub
    DURABLE_HISTORY_RETENTION_DAYS: string(durableHistoryRetentionDays)
    AZURE_CLIENT_ID: identity.properties.clientId
    SERVICE_PRINCIPAL_ID: identity.properties.principalId
    REGISTRY_TABLE_ENDPOINT: tableEndpoint
    // The node-results trigger (connection SERVICEBUS_CONNECTION) and the service's Service Bus clients.
    SERVICEBUS_CONNECTION__fullyQualifiedNamespace: serviceBusNamespace
    SERVICEBUS_CONNECTION__credential: 'managedidentity'
    SERVICEBUS_CONNECTION__clientId: identity.properties.clientId
    MAILBOX_LISTEN_RULE: listenRuleName
    MAILBOX_LISTEN_KEY: kvRef(mailboxListenKeyUri)
    MAILBOX_SEND_RULE: sendRuleName
    MAILBOX_SEND_KEY: kvRef(mailboxSendKeyUri)
    // Made once by infra/hooks/ensure-secrets.ts (azd postprovision); until then the reference does not resolve and
    // enrolment answers 503 not-configured.
    SERVICE_SIGNING_KEY: kvRef('${keyVaultUri}secrets/service-signing-key')
    SECRETS_KEY: kvRef('${keyVaultUri}secrets/secrets-key')
    // Empty until the operator publishes the pinned node artifacts (infra/README.md); empty counts as unset.
    ARTIFACT_CATALOG: artifactCatalog
    // The Event Grid topic of the lifecycle CloudEvents (event-grid.bicep), reached with the identity.
    LIFECYCLE_EVENTS_ENDPOINT: lifecycleEventsEndpoint
    // The host buffers a request body before any function runs, up to 100 MB by default, also on the anonymous routes
    // (enrolment, the node API): the routes' own 64 KiB limit (functions/http/route.ts) would only apply afterwards.
    // 1 MiB makes the host refuse (413) anything far past what any route accepts, while leaving headroom so the routes
    // still answer bodies between 64 KiB and 1 MiB with their own problem+json 413 rather than the host's bare one.
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1048576'
  },
  durableTaskSchedulerSettings,
  nodeWorkerSettings
)

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  // azd finds the service's deployment target by this tag (azure.yaml service `api`).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    siteConfig: { minTlsVersion: '1.2' }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identity.id }
        }
      }
      runtime: { name: 'node', version: nodeVersion }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Always-ready instances, per Flex Consumption scale group:
        // - `durable`: orchestrator and activity triggers. The Azure Storage backend is driven by polling the task
        //   hub's control and work-item queues from a running instance; a saga waits on durable timers and on
        //   events raised by other functions, and with no instance of this group a timer that fires or an event
        //   that arrives is only noticed after the platform's scale controller wakes the group up (tens of seconds
        //   per step, about ten steps per onboarding).
        // - `function:nodeResults`: the Service Bus trigger on node-results. From zero every node's step result
        //   would wait for a cold start before its saga hears of it; one warm instance keeps that to the queue poll.
        // HTTP (enrolment, node and admin APIs), machineEvents (Event Grid) and the sweeper timer scale from zero.
        alwaysReady: alwaysReadyInstances > 0
          ? [
              { name: 'durable', instanceCount: alwaysReadyInstances }
              { name: 'function:nodeResults', instanceCount: alwaysReadyInstances }
            ]
          : []
      }
    }
  }
}

resource appSettingsConfig 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// No basic-auth (publishing profile) deployments: azd deploys with Entra ID.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

// App Service authentication for the admin API (functions/http: x-ms-client-principal is trusted only when the
// platform sets WEBSITE_AUTH_ENABLED). Callers without a token still reach the anonymous routes (enrolment, node API);
// admin routes require the FlexNode.Admin / FlexNode.Reader app roles of this Entra app registration.
resource auth 'Microsoft.Web/sites/config@2025-03-01' = if (!empty(adminAuthClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: { requireAuthentication: false, unauthenticatedClientAction: 'AllowAnonymous' }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: adminAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: { allowedAudiences: ['api://${adminAuthClientId}', adminAuthClientId] }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
