import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { app } from "@azure/functions";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { functionsCore } from "./core.js";
import { DEPLOYED_REQUEST_BODY_SIZE_LIMIT, FunctionsHost } from "./host.js";
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

app.http("hostTest_echo", {
  route: "echo/{id}",
  methods: ["GET", "POST"],
  authLevel: "anonymous",
  handler: async (req) => {
    const bytes = new Uint8Array(await req.arrayBuffer());
    return {
      jsonBody: { id: req.params.id, query: Object.fromEntries(req.query.entries()), length: bytes.length, contentLength: req.headers.get("content-length") },
    };
  },
});
const seenMetadata: unknown[] = [];
app.serviceBusQueue("hostTest_queue", {
  connection: "HOST_TEST_SB",
  queueName: "q",
  handler: (_message, ctx) => {
    seenMetadata.push(ctx.triggerMetadata);
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

describe("functions host stand-in: what the real host does to a request before the function sees it", () => {
  type Echo = { id: string; query: Record<string, string>; length: number; contentLength: string | null };
  const echo = (res: { json: unknown }) => res.json as Echo;

  it("fills the body only when Content-Length > 0: a chunked request's body never arrives (azure-functions-host#4926)", async () => {
    const bytes = new TextEncoder().encode('{"a":1}');
    const chunked = await host.handleHttp({ method: "POST", url: "/api/echo/x", headers: { "transfer-encoding": "chunked" }, body: bytes });
    expect([chunked.status, echo(chunked).length]).toEqual([200, 0]);
    const zero = await host.handleHttp({ method: "POST", url: "/api/echo/x", headers: { "content-length": "0" }, body: bytes });
    expect(echo(zero).length).toBe(0);
    // A caller that says nothing about framing is a client that sends its length, as fetch, curl -d and the agent do.
    const sized = await host.handleHttp({ method: "POST", url: "/api/echo/x", body: bytes });
    expect(echo(sized)).toMatchObject({ length: 7, contentLength: "7" });
    expect((await host.handleHttp({ method: "POST", url: "/api/echo/x", headers: { "content-length": "seven" }, body: bytes })).status).toBe(400);
  });

  it("answers 413 itself past FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (as deployed unless the setting says otherwise)", async () => {
    expect(host.maxRequestBodyBytes).toBe(DEPLOYED_REQUEST_BODY_SIZE_LIMIT);
    const at = await host.handleHttp({ method: "POST", url: "/api/echo/x", body: new Uint8Array(DEPLOYED_REQUEST_BODY_SIZE_LIMIT) });
    expect([at.status, echo(at).length]).toEqual([200, DEPLOYED_REQUEST_BODY_SIZE_LIMIT]);
    const over = await host.handleHttp({ method: "POST", url: "/api/echo/x", body: new Uint8Array(DEPLOYED_REQUEST_BODY_SIZE_LIMIT + 1) });
    expect([over.status, over.body, over.logs]).toEqual([413, "", []]);
    const declared = await host.handleHttp({ method: "POST", url: "/api/echo/x", headers: { "content-length": String(200 * 1024 * 1024) } });
    expect(declared.status).toBe(413);
    process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT = "100";
    expect((await host.handleHttp({ method: "POST", url: "/api/echo/x", body: "x".repeat(101) })).status).toBe(413);
    expect((await new FunctionsHost({ requestBodySizeLimit: 10 }).handleHttp({ method: "POST", url: "/api/echo/x", body: "x".repeat(11) })).status).toBe(413);
  });

  it("joins a repeated query parameter's values with commas", async () => {
    const res = await host.handleHttp({ url: "/api/echo/x?status=Failed&status=Ready&pool=edge" });
    expect(echo(res).query).toEqual({ status: "Failed,Ready", pool: "edge" });
  });

  it("answers 404 for a malformed %-escape in the path rather than failing", async () => {
    expect((await host.handleHttp({ url: "/api/echo/%E0%A4%A" })).status).toBe(404);
    expect(echo(await host.handleHttp({ url: "/api/echo/a%20b" })).id).toBe("a b");
  });

  it("sends string trigger metadata as strings, so the library hands a numeric-looking MessageId over as a number", async () => {
    seenMetadata.length = 0;
    await host.invoke(
      "hostTest_queue",
      { string: "{}" },
      { triggerMetadata: { MessageId: "42", Subject: "s-1", DeliveryCount: 2, ApplicationProperties: { a: "1" } } },
    );
    expect(seenMetadata).toEqual([expect.objectContaining({ messageId: 42, subject: "s-1", deliveryCount: 2, applicationProperties: { a: "1" } })]);
  });
});

describe("route templates", () => {
  it("refuses constraints the stand-in cannot check instead of ignoring them", () => {
    expect(() => compileRoute("m/{n:min(5)}")).toThrow(/unsupported route constraint "min\(5\)"/);
    expect(() => compileRoute("m/{n:length(3)}")).toThrow(/unsupported route constraint/);
    expect(() => compileRoute("m/{n:datetime}")).toThrow(/unsupported route constraint "datetime"/);
    expect(() => compileRoute("m/{n:constructor}")).toThrow(/unsupported route constraint/);
    expect(compileRoute("m/{n:int?}").segments).toEqual([
      { kind: "literal", value: "m" },
      { kind: "param", name: "n", catchAll: false, optional: true, constraint: "int" },
    ]);
  });

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
