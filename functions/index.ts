/**
 * The entry point package.json `main` names (compiled to dist/functions/index.js): importing it registers every
 * function of the app, as the Node worker expects.
 */
import "./health.js";
