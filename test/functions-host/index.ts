/**
 * Public surface of the Functions host stand-in for tests, the Durable simulator, the local sandbox and benchmarks.
 * `setup.ts` is its other entry: the vitest `setupFiles` module (and a process's first import) that installs the
 * `@azure/functions-core` stand-in before any function module loads.
 */
export { FunctionRegistry, functionsCore, installFunctionsCore } from "./core.js";
export type {
  CoreInvocationContext,
  FunctionCallback,
  FunctionMetadata,
  LogRecord,
  RegisteredFunction,
  RpcBindingInfo,
  RpcInvocationResponse,
  RpcTypedData,
} from "./core.js";
export { decodeHttpResponse, decodeTypedData, DEPLOYED_REQUEST_BODY_SIZE_LIMIT, FunctionsHost, InvocationError } from "./host.js";
export type { FunctionsHostOptions, HttpCall, HttpResult, InputBindingProvider, InvocationResult, InvokeOptions } from "./host.js";
export { compileRoute, matchRoute, type CompiledRoute } from "./routes.js";
export { startServiceBusTriggers, type RunningTriggers, type ServiceBusTriggerOptions } from "./servicebus-trigger.js";
