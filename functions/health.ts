/** Liveness and configuration probe: 200 when the app settings parse, 503 naming each bad setting otherwise. */
import type { HttpResponseInit, InvocationContext } from "@azure/functions";
import { z } from "zod";
import { SettingsError, settings } from "../orchestrations/settings.js";
import { problem } from "./http/problem.js";
import { defineRoute, json, standaloneRoute } from "./http/route.js";

export const SERVICE_VERSION = "0.1.0";

const route = defineRoute({
  name: "health",
  method: "GET",
  route: "healthz",
  summary: "Liveness and configuration check",
  tag: "meta",
  access: "anonymous",
  responses: {
    200: { description: "Configured", schema: z.object({ status: z.literal("ok"), version: z.string(), taskHub: z.string() }) },
    503: { description: "Misconfigured; `errors` names each bad setting" },
  },
});

export function health(context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const s = settings();
    return Promise.resolve(json(200, { status: "ok", version: SERVICE_VERSION, taskHub: s.DURABLE_TASK_HUB }));
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    context.error(error.message);
    return Promise.resolve(
      problem(503, "invalid-settings", "The service is misconfigured", { errors: error.issues.map((i) => ({ path: `/${i.setting}`, message: i.message })) }),
    );
  }
}

/** The probe reads the settings itself: it must answer even when the services cannot be built from them. */
export function registerHealthRoute(): void {
  standaloneRoute(route, ({ context }) => health(context));
}
