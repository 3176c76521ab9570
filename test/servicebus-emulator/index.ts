/** Public surface of the Service Bus emulator for tests, the node agent's tests, the local sandbox and benchmarks. */
export { ServiceBusEmulator, type RunningEmulator, type ServiceBusEmulatorOptions, type StartOptions } from "./emulator.js";
export { DEFAULT_RULE, type AccessRight, type SharedAccessRule } from "./access-rules.js";
export { loadEmulatorConfig, parseEmulatorConfig, type EmulatorConfig } from "./emulator-config.js";
export type { AuthorizedBy, DeliveryLog, EntryOf, LinkRef, LogEntry, LogEvent, Outcome } from "./delivery-log.js";
export type { EmulatorInspector, MessageView, QueueSummary } from "./inspector.js";
export { formatIsoDuration, parseIsoDuration, TIMESPAN_MAX } from "./iso-duration.js";
export type { QueueDefinition, QueueSettings } from "./queue-settings.js";
export { parseSasToken, signSasToken, type SasToken, type SignSasTokenOptions } from "./sas-token.js";
