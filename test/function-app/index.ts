/**
 * Public surface of the whole-app harness (`app.ts`): the real function app on the Functions host stand-in, with the
 * Durable simulator behind its durable client and registry tables in Azurite. Importing it registers the app (the
 * `@azure/functions-core` stand-in must be installed first: vitest's setupFiles does it; a plain process calls
 * `installFunctionsCore()` and then imports this dynamically).
 */
export * from "./app.js";
export { useStandInSaga } from "./stand-in-saga.js";
