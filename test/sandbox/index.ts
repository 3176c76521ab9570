/**
 * Public surface of the local sandbox for the end-to-end tests: the whole stack in real time (`startStack`), a fleet
 * of real agents on it (`startFleet`), the agent's host side and failure injection as `npm start` uses them, and the
 * sandbox roots' tree snapshots. `main.ts` is the `npm start` entry, not part of this surface.
 */
export { SANDBOX_TIMING, startStack, type Stack, type StackOptions } from "./stack.js";
export { startFleet, type Fleet, type FleetEvent, type FleetOptions, type NodeOutcome, type SagaProgress } from "./fleet.js";
export { SandboxNode, type NodeSpec, type SandboxNodeOptions } from "./sandbox-node.js";
export { sandboxHostSide } from "./host-side.js";
export { failureFor, planFor, type InjectedFailure } from "./failure-injection.js";
export { AGENT_STATE_DIR, seedHostRoot, treeDiff, treeSnapshot, type HostProfile, type TreeSnapshot } from "./sandbox-root.js";
export {
  ARC_RG,
  ARC_RG_ID,
  CLUSTER_ID,
  CLUSTER_NAME,
  CLUSTER_RG,
  DEMO_POOL,
  demoPoolBody,
  KUBERNETES_VERSION,
  LOCATION,
  SERVICE_PRINCIPAL_ID,
  SUBSCRIPTION,
} from "./estate.js";
export { startArtifactServer, type ArtifactRequest, type ArtifactServer, type ServedArtifact } from "./artifact-server.js";
export { SANDBOX_ADMIN, type FrontDoor } from "./front-door.js";
export { formatSummary, summarize, type NodeSummary, type SandboxSummary } from "./summary.js";
export { ARM_THROTTLE, injectAzureFault, isSagaPhase, SAGA_PHASES, type AzureFault, type SagaPhase } from "./azure-faults.js";
