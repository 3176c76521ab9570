/**
 * The entry point package.json `main` names (compiled to dist/functions/index.js): importing it registers every
 * function of the app, as the Node worker expects, with the clients the composition root builds from the settings.
 */
import { createServiceProvider } from "./composition-root.js";
import { registerApp } from "./register-app.js";

registerApp(createServiceProvider());
