/**
 * The entry point package.json `main` names (compiled to dist/functions/index.js): importing it registers every
 * function of the app, as the Node worker expects, with the clients the composition root builds from the settings.
 * Telemetry starts first: the Functions instrumentation must be in place before the first function is registered.
 */
import { startTelemetry } from "../orchestrations/observability/telemetry.js";
import { createServiceProvider } from "./composition-root.js";
import { registerApp } from "./register-app.js";

await startTelemetry(process.env, { functionsHost: true });
registerApp(createServiceProvider());
