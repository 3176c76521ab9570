// What a new pool needs, deployed into the pool's Arc resource group after the service is deployed (the Event Grid
// subscription points at the machineEvents function, which must exist first):
//   az deployment group create -g <arc-rg> -f infra/pool.bicep -p servicePrincipalId=... functionAppResourceId=...
//      clusterResourceId=... roleGrants='[...]'          (infra/README.md "Add a pool"; the postdeploy hook prints it)
// - the service identity's roles on the Arc resource group and on the AKS cluster (pool-cluster.bicep, which may sit
//   in another resource group or subscription), each with the code path that needs it;
// - the resource group's Event Grid system topic (or the existing one: a source has at most one system topic) and a
//   subscription delivering Arc machine write/delete successes to the machineEvents function, in EventGridSchema
//   (the schema the handler is tested with: test/onboard/event-grid.test.ts).
// roleGrants must be the pool's roleGrants (POST /api/manage/pools): the ABAC conditions allow the service to grant
// exactly those roles, at exactly those scopes, to service principals (the nodes' Arc identities) and nothing else.
// Pools that share a scope must deploy the union of their grants for it (one condition per scope and role).
// Privileged roles (Owner, Contributor, User Access Administrator, RBAC Administrator) are refused in roleGrants.

import { builtInRoles, privilegedRoles, roleAssignmentCondition } from 'modules/roles.bicep'

@description('Object (principal) id of the service identity (main.bicep output FLEXNODE_SERVICE_PRINCIPAL_ID).')
param servicePrincipalId string

@description('Resource id of the function app (main.bicep output FLEXNODE_FUNCTION_APP_ID).')
param functionAppResourceId string

@description('The pool\'s AKS cluster (clusterResourceId of the pool).')
param clusterResourceId string

@allowed(['LocalAccounts', 'EntraOnly'])
@description('LocalAccounts: the service uses the cluster admin credential. EntraOnly (local accounts disabled): the service uses its own Entra token and needs Azure Kubernetes Service RBAC Cluster Admin.')
param clusterAccess string = 'LocalAccounts'

@allowed(['create', 'adopt'])
@description('The pool\'s arc.mode: create (the service creates and deletes the machines) or adopt (it only reads them).')
param arcMode string = 'create'

@description('The pool\'s roleGrants: [{ roleDefinitionId: <role GUID>, scope: "cluster" | "arcResourceGroup" }].')
param roleGrants { roleDefinitionId: string, scope: ('cluster' | 'arcResourceGroup') }[] = []

@description('Name of the resource group\'s existing Event Grid system topic, if it has one; empty = create one.')
param existingSystemTopicName string = ''

@description('False deploys the roles only (e.g. the machineEvents function is not deployed yet).')
param subscribeMachineEvents bool = true

// A node identity holding one of these could take over the scope; the ABAC condition would let the service hand it
// out, so the deployment fails instead (the admin API refuses such a pool too).
var refusedGrants = filter(roleGrants, g => contains(privilegedRoles, toLower(g.roleDefinitionId)))
var checkedGrants = empty(refusedGrants)
  ? roleGrants
  : fail('roleGrants: privileged roles are refused (Owner, Contributor, User Access Administrator, Role Based Access Control Administrator): ${join(map(refusedGrants, g => g.roleDefinitionId), ', ')}')
var arcGrantRoles = map(filter(checkedGrants, g => g.scope == 'arcResourceGroup'), g => g.roleDefinitionId)
var clusterGrantRoles = map(filter(checkedGrants, g => g.scope == 'cluster'), g => g.roleDefinitionId)
var clusterSegments = split(clusterResourceId, '/')

// Exactly the HybridCompute actions infra/arm-operations.json lists for the Arc resource group (the service's PUT, GET,
// list and DELETE of machines): not the built-in Azure Connected Machine Resource Administrator, whose extensions/*,
// runCommands/*, privateLinkScopes/* and deployments/* would let a takeover of the app run commands as root on every
// Arc server in the resource group. (The deletion's operationStatus poll is at the subscription's location, outside
// any role at this scope, as before.)
var arcMachineActions = [
  'Microsoft.HybridCompute/machines/read'
  'Microsoft.HybridCompute/machines/write'
  'Microsoft.HybridCompute/machines/delete'
]

// Custom role names are unique per tenant: the resource group id's hash tells the pools' roles apart.
resource arcMachineRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (arcMode == 'create') {
  name: guid(resourceGroup().id, 'flexnode-onboarding arc machines')
  properties: {
    roleName: 'flexnode-onboarding Arc machines (${uniqueString(resourceGroup().id)})'
    description: 'Create, read and delete the Arc machines of a flexnode-onboarding pool; nothing on their extensions or run commands.'
    type: 'CustomRole'
    permissions: [{ actions: arcMachineActions, notActions: [], dataActions: [], notDataActions: [] }]
    assignableScopes: [resourceGroup().id]
  }
}

var arcRoles = concat(
  // create: orchestrations/onboard/activities.ts putArcMachine (PUT), getArcPrincipal (GET), removeCreatedObject
  // (DELETE + LRO poll); orchestrations/sweeper/sweep.ts managedMachines (list); functions/machine-events.ts (GET).
  arcMode == 'create' ? [{ role: arcMachineRole.name, condition: '' }] : [],
  // grantRole / removeCreatedObject at the Arc resource group (PUT/DELETE role assignments, ABAC-limited to the pool's
  // roles for service principals other than the service itself); its */read also serves the sweeper's role-assignment listing and, in adopt
  // mode, the machine reads.
  empty(arcGrantRoles)
    ? []
    : [{ role: builtInRoles.roleBasedAccessControlAdministrator, condition: roleAssignmentCondition(arcGrantRoles, servicePrincipalId) }],
  // No grants here: the sweeper still lists role assignments at this scope (and, in adopt mode, the event handler and
  // the saga read the adopted machine, and the sweeper lists machines): read only.
  empty(arcGrantRoles) ? [{ role: builtInRoles.reader, condition: '' }] : []
)

resource arcRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for grant in arcRoles: {
    name: guid(resourceGroup().id, servicePrincipalId, grant.role)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
      principalId: servicePrincipalId
      principalType: 'ServicePrincipal'
      condition: empty(grant.condition) ? null : grant.condition
      conditionVersion: empty(grant.condition) ? null : '2.0'
      description: 'flexnode-onboarding service identity'
    }
  }
]

module cluster 'modules/pool-cluster.bicep' = {
  name: 'flexnode-pool-cluster-${uniqueString(clusterResourceId)}'
  scope: resourceGroup(clusterSegments[2], clusterSegments[4])
  params: {
    clusterName: last(clusterSegments)
    servicePrincipalId: servicePrincipalId
    clusterAccess: clusterAccess
    grantRoles: clusterGrantRoles
  }
}

// System topic names allow letters, digits and hyphens only; resource group names allow more.
resource newSystemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (subscribeMachineEvents && empty(existingSystemTopicName)) {
  name: 'flexnode-machines-${uniqueString(resourceGroup().id)}'
  location: 'global'
  properties: {
    source: resourceGroup().id
    topicType: 'Microsoft.Resources.ResourceGroups'
  }
}

resource existingSystemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = if (subscribeMachineEvents && !empty(existingSystemTopicName)) {
  name: existingSystemTopicName
}

var machinesPrefix = '${resourceGroup().id}/providers/Microsoft.HybridCompute/machines/'
var subscriptionProperties = {
  destination: {
    endpointType: 'AzureFunction'
    properties: {
      resourceId: '${functionAppResourceId}/functions/machineEvents'
      maxEventsPerBatch: 1
      preferredBatchSizeInKilobytes: 64
    }
  }
  eventDeliverySchema: 'EventGridSchema'
  filter: {
    includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess']
    subjectBeginsWith: machinesPrefix
    isSubjectCaseSensitive: false
    advancedFilters: [
      {
        operatorType: 'StringIn'
        key: 'data.operationName'
        values: ['Microsoft.HybridCompute/machines/write', 'Microsoft.HybridCompute/machines/delete']
      }
    ]
  }
  // Events that still fail after a day of retries are dropped; the sweeper (every 15 minutes) reconciles what they
  // would have changed.
  retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
}

resource newTopicSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (subscribeMachineEvents && empty(existingSystemTopicName)) {
  parent: newSystemTopic
  name: 'flexnode-machine-events'
  properties: subscriptionProperties
}

resource existingTopicSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (subscribeMachineEvents && !empty(existingSystemTopicName)) {
  parent: existingSystemTopic
  name: 'flexnode-machine-events'
  properties: subscriptionProperties
}

output systemTopicName string = !subscribeMachineEvents ? '' : (empty(existingSystemTopicName) ? newSystemTopic.name : existingSystemTopic.name)
