// Built-in role definition GUIDs the templates grant, in one place. The same GUIDs, with each role's actions, the scope
// it is granted at and the code path that needs it, are in infra/roles.json, which the infra tests check the compiled
// templates against.

@export()
@description('Built-in Azure role definition GUIDs (name → GUID).')
var builtInRoles = {
  // Service identity: data plane of the app's own resources.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
  // Service identity: pool scopes (the Arc machines themselves: pool.bicep's custom role, not a built-in one).
  roleBasedAccessControlAdministrator: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  aksClusterAdminRole: '0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8'
  aksRbacClusterAdmin: 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b'
  // The deploying user: writes the secrets Bicep cannot make (infra/hooks/ensure-secrets.ts).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

@export()
@description('''Built-in roles a pool's roleGrants may never name (pool.bicep refuses them, as the admin API does:
orchestrations/clients/registry/model.ts PRIVILEGED_ROLES): each lets its holder write role assignments or every
resource at the scope, so a node identity holding one could take over the scope.''')
var privilegedRoles = [
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635' // Owner
  'b24988ac-6180-42a0-ab88-20f7382dd24c' // Contributor
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9' // User Access Administrator
  'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator
]

@export()
@description('''ABAC condition (conditionVersion 2.0) for the service's Role Based Access Control Administrator assignment:
role assignments may be written (@Request) and deleted (@Resource) only for the given role definitions, only for
principalType ServicePrincipal (the nodes' Arc machine identities) and never for the service's own principal (else a
takeover of the app could grant itself the pool's roles). Shape: docs/reference/azure-resource-manager.md §2.5; the
PrincipalId operator is one azure-docs conditions-authorization-actions-attributes.md lists for GUID attributes.''')
func roleAssignmentCondition(roleGuids string[], servicePrincipalId string) string =>
  '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(roleGuids, ', ')}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${servicePrincipalId}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(roleGuids, ', ')}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${servicePrincipalId}}))'
