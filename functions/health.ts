/** Liveness and configuration probe: 200 when the app settings parse, 503 naming each bad setting otherwise. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import { SettingsError, settings } from "../orchestrations/settings.js";
import { problem } from "./http/problem.js";

export const SERVICE_VERSION = "0.1.0";

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const s = settings();
    return { status: 200, jsonBody: { status: "ok", version: SERVICE_VERSION, taskHub: s.DURABLE_TASK_HUB }, headers: { "cache-control": "no-store" } };
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    context.error(error.message);
    return problem(503, "invalid-settings", "The service is misconfigured", {
      errors: error.issues.map((i) => ({ path: `/${i.setting}`, message: i.message })),
    });
  }
}

app.http("health", { route: "healthz", methods: ["GET"], authLevel: "anonymous", handler: health });
