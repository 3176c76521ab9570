/** Public surface of the Durable simulator (the orchestration tier) for tests, the local sandbox and benchmarks. */
export {
  DurableSimulator,
  InstanceExistsError,
  isTerminal,
  OrchestratorNotFoundError,
  type ActivityCall,
  type DurableSimulatorOptions,
  type InstanceStatus,
  type RuntimeStatus,
  type StartOptions,
} from "./simulator.js";
export { startDurableHarness, type DurableHarness } from "./harness.js";
export { durableClientBinding, startDurableClientServer, type DurableClientBinding, type DurableClientServer } from "./client-server.js";
export { ActionType, EventType, type FailureDetailsWire, type HistoryEvent } from "./wire.js";
/** Sample orchestrations on the real durable-functions API (`sim_*`), for tests of the stand-ins themselves. */
export { registerOrderSaga } from "./fixtures/order-saga.js";
