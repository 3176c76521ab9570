import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { app } from "@azure/functions";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { functionsCore } from "./core.js";
import { FunctionsHost } from "./host.js";
import { compileRoute, matchRoute } from "./routes.js";
import "../../functions/index.js";
import { registerOrderSaga } from "../durable/index.js";

registerOrderSaga();

app.http("hostTest_keyed", { route: "keyed/{id:int}", methods: ["GET"], authLevel: "function", handler: (req) => ({ jsonBody: { id: req.params.id } }) });
app.http("hostTest_boom", {
  methods: ["POST"],
  handler: (_req, ctx) => {
    ctx.warn("about to fail");
    throw new Error("boom");
  },
});

const host = new FunctionsHost();
const saved = { ...process.env };
beforeEach(() => {
  process.env.DURABLE_TASK_HUB = "FlexNodeHub";
  process.env.REGISTRY_CONNECTION = "UseDevelopmentStorage=true";
});
afterEach(() => {
  process.env = { ...saved };
});

describe("functions host stand-in: registration capture", () => {
  it("captures app.http registrations with the binding metadata the worker would send", () => {
    const health = functionsCore().get("health");
    const [triggerName, trigger] = Object.entries(health.metadata.bindings).find(([, b]) => b.type === "httpTrigger")!;
    expect(triggerName).toMatch(/^httpTrigger[0-9a-f]{10}$/);
    expect(trigger).toMatchObject({ direction: "in", route: "healthz", methods: ["GET"], authLevel: "anonymous" });
    expect(health.metadata.bindings.$return).toEqual({ type: "http", direction: "out", name: expect.stringMatching(/^httpOutput/) });
  });

  it("captures df.app orchestration, activity and client registrations", () => {
    const core = functionsCore();
    expect(core.get("sim_orderSaga").trigger.type).toBe("orchestrationTrigger");
    expect(core.get("sim_chargePayment").trigger.type).toBe("activityTrigger");
    const starter = Object.values(core.get("sim_startOrder").metadata.bindings).map((b) => [b.type, b.direction]);
    expect(starter).toEqual(
      expect.arrayContaining([
        ["httpTrigger", "in"],
        ["durableClient", "in"],
        ["http", "out"],
      ]),
    );
  });
});

describe("functions host stand-in: invocation through the library's InvocationModel", () => {
  it("returns status, headers, JSON body and user logs", async () => {
    const res = await host.invokeHttp("health");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.json).toEqual({ status: "ok", version: "0.1.0", taskHub: "FlexNodeHub" });
  });

  it("answers a misconfigured app with problem+json naming the setting, and logs it", async () => {
    process.env.DURABLE_TASK_HUB = "9-not-a-hub";
    const res = await host.invokeHttp("health");
    expect(res.status).toBe(503);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(res.json).toMatchObject({ type: "https://flexnode.dev/problems/invalid-settings", status: 503, errors: [{ path: "/DURABLE_TASK_HUB" }] });
    delete process.env.REGISTRY_CONNECTION;
    process.env.DURABLE_TASK_HUB = "FlexNodeHub";
    expect((await host.invokeHttp("health")).json).toMatchObject({ errors: [{ path: "/REGISTRY_CONNECTION", message: expect.stringMatching(/exactly one/) }] });
    expect(res.logs).toEqual([{ level: "error", category: "user", message: expect.stringContaining("DURABLE_TASK_HUB") }]);
  });

  it("answers an unhandled function error with a bare 500, keeping the logs", async () => {
    const res = await host.invokeHttp("hostTest_boom", { method: "POST", body: {} });
    expect(res.status).toBe(500);
    expect(res.body).toBe("");
    expect(res.logs).toEqual([{ level: "warning", category: "user", message: "about to fail" }]);
  });

  it("routes raw requests like the host: prefix, templates, constraints and methods", async () => {
    expect((await host.handleHttp({ url: "/api/HEALTHZ" })).status).toBe(200);
    expect((await host.handleHttp({ url: "/api/healthz", method: "POST" })).status).toBe(404);
    expect((await host.handleHttp({ url: "/healthz" })).status).toBe(404);
    expect((await host.handleHttp({ url: "/api/keyed/12" })).json).toEqual({ id: "12" });
    expect((await host.handleHttp({ url: "/api/keyed/twelve" })).status).toBe(404);
  });

  it("enforces function keys only when the host is given keys, as Azure does and Core Tools do not", async () => {
    const keyed = new FunctionsHost({ keys: { function: ["fk"], master: "mk" } });
    expect((await keyed.handleHttp({ url: "/api/keyed/1" })).status).toBe(401);
    expect((await keyed.handleHttp({ url: "/api/keyed/1?code=wrong" })).status).toBe(401);
    expect((await keyed.handleHttp({ url: "/api/keyed/1?code=fk" })).status).toBe(200);
    expect((await keyed.handleHttp({ url: "/api/keyed/1", headers: { "x-functions-key": "mk" } })).status).toBe(200);
    expect((await keyed.handleHttp({ url: "/api/healthz" })).status).toBe(200);
  });
});

describe("route templates", () => {
  it("matches optional, catch-all and constrained parameters", () => {
    expect(matchRoute(compileRoute("nodes/{id}"), "/Nodes/n1")).toEqual({ id: "n1" });
    expect(matchRoute(compileRoute("nodes/{id?}"), "/nodes")).toEqual({});
    expect(matchRoute(compileRoute("files/{*rest}"), "/files/a/b%20c")).toEqual({ rest: "a/b c" });
    expect(matchRoute(compileRoute("items/{n:int}"), "/items/x")).toBeUndefined();
    expect(matchRoute(compileRoute("items/{g:guid}"), "/items/0b5fe924-9a61-425c-96af-cfe6e287ca2d")).toEqual({ g: "0b5fe924-9a61-425c-96af-cfe6e287ca2d" });
    expect(matchRoute(compileRoute("a/b"), "/a/b/c")).toBeUndefined();
  });
});

describe("the compiled entry package.json names", () => {
  let sourceNames: string[];
  beforeAll(() => {
    sourceNames = [...functionsCore().functions.keys()].filter((n) => !/^(sim_|hostTest_)/.test(n)).sort();
  });

  it("registers every function the sources register (what `func start` loads)", async () => {
    const main = resolve(JSON.parse(readFileSync("package.json", "utf8")).main as string);
    expect(existsSync(main), `${main} is missing: run \`npm run build\` first (npm test does)`).toBe(true);
    const core = functionsCore();
    const saved = new Map(core.functions);
    core.functions.clear();
    try {
      await import(pathToFileURL(main).href);
      expect([...core.functions.keys()].sort()).toEqual(sourceNames);
      expect(sourceNames).toContain("health");
    } finally {
      for (const [k, v] of saved) core.functions.set(k, v);
    }
  });
});
