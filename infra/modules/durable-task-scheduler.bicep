// Optional Durable backend (main.bicep durableBackend = 'DurableTaskScheduler'): a Durable Task Scheduler with one
// task hub named like DURABLE_TASK_HUB, and an autopurge retention policy for finished orchestrations (the scheduler
// purges them itself; the Azure Storage backend needs the service's own purge timer, see infra/README.md).

param location string
param tags object
param name string
param taskHubName string
@allowed(['Consumption', 'Dedicated'])
param sku string
@minValue(0)
@maxValue(90)
param historyRetentionDays int

resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // Dedicated is bought in capacity units; Consumption has none.
    sku: sku == 'Dedicated' ? { name: sku, capacity: 1 } : { name: sku }
    // An empty list denies every caller; access is still Entra-only (Durable Task Data Contributor).
    ipAllowlist: ['0.0.0.0/0']
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' = {
  parent: scheduler
  name: taskHubName
}

// Completed, Failed, Canceled and Terminated orchestrations older than the retention are purged.
resource retention 'Microsoft.DurableTask/schedulers/retentionPolicies@2026-02-01' = {
  parent: scheduler
  name: 'default'
  properties: {
    retentionPolicies: [
      { retentionPeriodInDays: historyRetentionDays }
    ]
  }
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
