/**
 * Public surface of the Azurite stand-in for the local sandbox and benchmarks. Tests do not start it: the vitest
 * `globalSetup` (`global-setup.ts`, the folder's other entry) starts one for the whole run and tests read
 * `inject("azuriteConnectionString")`.
 */
export { DEV_ACCOUNT, DEV_KEY, startAzurite, type RunningAzurite } from "./azurite.js";
