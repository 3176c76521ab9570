// Diagnostic settings sending the Key Vault's audit logs (who read or wrote which secret) and the Service Bus
// namespace's operational logs (entity create/delete: the per-node mailbox queues) to the app's Log Analytics
// workspace. A module of its own, over the existing resources, so the modules that create them stay as they are.
// api-version 2021-05-01-preview is the newest Microsoft.Insights/diagnosticSettings has (and the first with
// categoryGroup); use-recent-api-versions only accepts 2016-09-01, which is a different resource (name 'service'),
// so the rule is silenced for these two lines only.

param logAnalyticsName string
param keyVaultName string
param serviceBusName string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2026-03-01' existing = {
  name: logAnalyticsName
}

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' existing = {
  name: keyVaultName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: serviceBusName
}

#disable-next-line use-recent-api-versions
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalytics.id
    logs: [{ categoryGroup: 'audit', enabled: true }]
  }
}

#disable-next-line use-recent-api-versions
resource serviceBusDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'operational-logs-to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: logAnalytics.id
    logs: [{ category: 'OperationalLogs', enabled: true }]
  }
}
