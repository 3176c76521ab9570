// vitest setupFiles entry: runs in every test worker before any test module (and so any function module) loads.
import { installFunctionsCore } from "./core.js";

installFunctionsCore();
