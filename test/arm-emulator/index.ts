/** Public surface of the ARM emulator for tests, the local sandbox and benchmarks. */
export { ArmEmulator, type ArmEmulatorOptions } from "./arm-emulator.js";
export { ArmError } from "./arm-error.js";
export { emulatorCredential, emulatorToken, DEFAULT_TENANT_ID, type Caller, type EmulatorCredentialOptions, type PrincipalType } from "./credential.js";
export type { ResourceEvent, ResourceEventData, ResourceEventListener, ResourceEventType } from "./event-grid.js";
export type { FaultSpec, InjectedFault } from "../support/index.js";
export type { ListenOptions, ListeningEmulator } from "./https-server.js";
export type { ClusterView, MachineView, RoleAssignmentView } from "./inspector.js";
export { MACHINE_ASYNC_DELETE_API_VERSION, type MachineStatus } from "./machines.js";
export type { AadProfile, ClusterFixture, ClusterRecord } from "./managed-clusters.js";
export type { AsyncOperation } from "./operations.js";
export type { RequestLogEntry, RequestLogQuery } from "./request-log.js";
export { machineResourceId } from "./resource-id.js";
export { BUILT_IN_ROLES, roleDefinitionId, type BuiltInRoleName } from "./role-definitions.js";
export type { RouteInfo } from "./router.js";
export { ARM_DEFAULT_LIMITS, type OpClass, type ThrottlingOptions } from "./throttling.js";
export type { BucketLimits } from "./token-bucket.js";
export type { EmulatorRequest, EmulatorResponse } from "./wire.js";
export { documentedResourceEvent, toCloudEvent, type CloudEvent } from "./published-events.js";
