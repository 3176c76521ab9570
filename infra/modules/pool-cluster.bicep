// The service identity's roles on a pool's AKS cluster (deployed by pool.bicep into the cluster's resource group).

import { builtInRoles, roleAssignmentCondition } from 'roles.bicep'

param clusterName string
param servicePrincipalId string
@allowed(['LocalAccounts', 'EntraOnly'])
param clusterAccess string
@description('Role GUIDs the pool grants to node identities at the cluster scope.')
param grantRoles string[]

resource cluster 'Microsoft.ContainerService/managedClusters@2025-10-01' existing = {
  name: clusterName
}

var roles = concat(
  // orchestrations/services.ts kubeAccess: listClusterAdminCredential (server, CA and the admin token) — on every
  // cluster, Entra-only ones included: the code asks for the admin credential first and falls back only on its 400
  // "local accounts disabled" answer, which ARM gives only to a caller allowed to ask (otherwise 403, and the saga
  // fails). Also managedClusters/read: activities.ts clusterInfo (GET cluster).
  [{ role: builtInRoles.aksClusterAdminRole, condition: '' }],
  // Entra-only clusters: listClusterUserCredential (server and CA, kubeWithEntraToken) and the Kubernetes API with the
  // service's own Entra token (bootstrap tokens, per-pool RBAC, Node reads and deletes); its
  // Microsoft.Authorization/*/read also serves the sweeper's role-assignment listing.
  clusterAccess == 'EntraOnly' ? [{ role: builtInRoles.aksRbacClusterAdmin, condition: '' }] : [],
  // grantRole / removeCreatedObject at the cluster scope, ABAC-limited to the pool's cluster roles for service
  // principals other than the service itself; its */read also serves the sweeper's role-assignment listing.
  empty(grantRoles)
    ? []
    : [{ role: builtInRoles.roleBasedAccessControlAdministrator, condition: roleAssignmentCondition(grantRoles, servicePrincipalId) }],
  // Otherwise the sweeper's listing of role assignments at the cluster (orchestrations/sweeper/sweep.ts) needs read.
  empty(grantRoles) && clusterAccess == 'LocalAccounts' ? [{ role: builtInRoles.reader, condition: '' }] : []
)

resource clusterRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for grant in roles: {
    name: guid(cluster.id, servicePrincipalId, grant.role)
    scope: cluster
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
