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
  // Service identity: pool scopes.
  connectedMachineResourceAdministrator: 'cd570a14-e51a-42ad-bac8-bafd67325302'
  roleBasedAccessControlAdministrator: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  aksClusterAdminRole: '0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8'
  aksRbacClusterAdmin: 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b'
  // The deploying user: writes the secrets Bicep cannot make (infra/hooks/ensure-secrets.ts).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

@export()
@description('''ABAC condition (conditionVersion 2.0) for the service's Role Based Access Control Administrator assignment:
role assignments may be written (@Request) and deleted (@Resource) only for the given role definitions and only for
principalType ServicePrincipal (the nodes' Arc machine identities). Shape: docs/reference/azure-resource-manager.md §2.5.''')
func roleAssignmentCondition(roleGuids string[]) string =>
  '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(roleGuids, ', ')}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(roleGuids, ', ')}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}))'
