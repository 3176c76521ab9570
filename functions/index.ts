/**
 * The entry point package.json `main` names (compiled to dist/functions/index.js): importing it registers every
 * function of the app, as the Node worker expects.
 */
import "./health.js";
import "./enrol.js";
import "./manage-pools.js";
import "./manage-tokens.js";
import "./manage-nodes.js";
import "./node-api.js";
import "./node-results.js";
import "./machine-events.js";
import "./sweeper.js";
import "./openapi.js";
import "../orchestrations/onboard/index.js";
