// The topic the service publishes its lifecycle CloudEvents to (contract/lifecycle-events.ts; README "Lifecycle
// events"): CloudEvents 1.0 input schema, Entra authentication only (the service's identity holds EventGrid Data
// Sender on it, service-roles.bicep). Consumers subscribe to it themselves; the template makes no subscription.

param location string
param tags object
param name string

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

output endpoint string = topic.properties.endpoint
