/**
 * orchestration-start.ts starts an orchestration over node:http with the request durable-functions' DurableClient makes
 * over axios. Checked two ways: the two requests side by side, as a loopback server records them (method, path, body,
 * content type, the trace context's headers); and the starter against the Durable simulator's copy of the extension's
 * endpoint, where a start creates the instance and a refused one (an instance running under the id, an orchestrator
 * that does not exist) fails with the extension's status and changes nothing.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import { InvocationContext } from "@azure/functions";
import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import * as df from "durable-functions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpOrchestrationStarter, OrchestrationStartError } from "../../orchestrations/clients/orchestration-start.js";
import { installTelemetry } from "../../orchestrations/observability/telemetry.js";
import { durableClientBinding, registerOrderSaga, startDurableHarness, type DurableHarness } from "../durable/index.js";
import { closeServer, listenOnLoopback, readBody } from "../support/index.js";

registerOrderSaga();

let telemetry: { shutdown(): Promise<void> } | undefined;
const harnesses: DurableHarness[] = [];
beforeAll(async () => {
  telemetry = await installTelemetry({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())], metricReaders: [] });
});
afterAll(async () => {
  for (const h of harnesses) await h.close();
  await telemetry?.shutdown();
});

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback server that answers every request as the extension answers a start (202, its management payload) and keeps what it got. */
async function recordingEndpoint(): Promise<{ origin: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      requests.push({ method: req.method ?? "", path: decodeURIComponent(req.url ?? ""), headers: req.headers, body: body.toString("utf8") });
      res.writeHead(202, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ id: "from-the-endpoint" }));
    });
  });
  const origin = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  return { origin, requests, close: () => closeServer(server) };
}

function durableClientFor(binding: unknown): df.DurableClient {
  const input = df.input.durableClient();
  const invocation = new InvocationContext({ functionName: "startTest", options: { extraInputs: [input] } });
  invocation.extraInputs.set(input, binding);
  return df.getClient(invocation);
}

describe("httpOrchestrationStarter", () => {
  it("sends the request DurableClient.startNew sends: path, JSON body, content type and the active trace context", async () => {
    const endpoint = await recordingEndpoint();
    try {
      const binding = durableClientBinding(endpoint.origin, "hub", "code");
      const input = { nodeId: "n-1", pool: "edge", run: "r1", startedAt: 1_700_000_000_000, facts: { hostname: "ä/ö?#" } };
      const instanceId = "n-1:offboard";
      await trace.getTracer("test").startActiveSpan("caller", async (span) => {
        await durableClientFor(binding).startNew("OffboardNode", { instanceId, input });
        await httpOrchestrationStarter(binding.rpcBaseUrl)("OffboardNode", { instanceId, input });
        span.end();
      });
      const [library, ours] = endpoint.requests;
      expect(endpoint.requests).toHaveLength(2);
      expect(ours!.method).toBe(library!.method);
      expect(ours!.path).toBe(library!.path);
      expect(ours!.path).toBe("/durabletask/orchestrators/OffboardNode/n-1:offboard");
      expect(JSON.parse(ours!.body)).toEqual(JSON.parse(library!.body));
      expect(ours!.headers["content-type"]).toMatch(/^application\/json/);
      expect(library!.headers["content-type"]).toMatch(/^application\/json/);
      expect(ours!.headers["traceparent"]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(ours!.headers["traceparent"]).toBe(library!.headers["traceparent"]);
    } finally {
      await endpoint.close();
    }
  });

  it("sends no trace headers outside a span", async () => {
    const endpoint = await recordingEndpoint();
    try {
      await httpOrchestrationStarter(durableClientBinding(endpoint.origin, "hub", "code").rpcBaseUrl)("OffboardNode", { instanceId: "n-2", input: {} });
      expect(endpoint.requests[0]!.headers["traceparent"]).toBeUndefined();
    } finally {
      await endpoint.close();
    }
  });

  it("starts the instance at the extension's endpoint, and a refused start fails with its status and changes nothing", async () => {
    const harness = await startDurableHarness();
    harnesses.push(harness);
    const start = httpOrchestrationStarter(harness.clientServer.binding.rpcBaseUrl);
    await start("sim_orderSaga", { instanceId: "order-1", input: { id: "first" } });
    expect(harness.simulator.getStatus("order-1")).toMatchObject({ name: "sim_orderSaga", runtimeStatus: "Pending", input: { id: "first" } });

    const again = await start("sim_orderSaga", { instanceId: "order-1", input: { id: "second" } }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OrchestrationStartError);
    expect(again).toMatchObject({ status: 409, orchestration: "sim_orderSaga", instanceId: "order-1" });
    expect(harness.simulator.getStatus("order-1")?.input).toEqual({ id: "first" });

    const unknown = await start("noSuchSaga", { instanceId: "order-2", input: {} }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ name: "OrchestrationStartError", status: 400 });
    expect(harness.simulator.instanceIds()).not.toContain("order-2");
  });
});
