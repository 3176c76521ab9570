/**
 * OpenTelemetry over whole onboardings in the sandbox: two real agents through the enrolment URL, one onboarded to
 * Ready and one failing at a node step, with the spans and metrics read back from an in-memory exporter and reader.
 *
 * - One trace per onboarding: the enrolment's trace holds every saga episode, every activity, the Azure SDK's ARM and
 *   Service Bus spans, the Kubernetes calls and each node step the agent ran (its result echoes the envelope's
 *   traceparent), and nothing of this node is outside it.
 * - No attribute anywhere (spans, span events, metric points, resource) holds a secret of the onboarding.
 * - The metrics: enrolments by outcome, sagas by outcome and phase, step durations, ARM throttles, time to Ready.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { AggregationTemporality, DataPointType, MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findSecrets } from "../../contract/secrets.js";
import { loadIdentity } from "../../node-agent/src/identity.js";
import { installTelemetry } from "../../orchestrations/observability/telemetry.js";
import { failureFor, planFor, sandboxHostSide, startFleet, type Fleet, type NodeOutcome, type Stack } from "../sandbox/index.js";
import { startE2eStack } from "./support.js";

class TestMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new TestMetricReader();
let telemetry: { shutdown(): Promise<void> } | undefined;
let stack: Stack;
let fleet: Fleet | undefined;
let ready: NodeOutcome;
let failed: NodeOutcome;
let token: string;
let metrics: ResourceMetrics;

beforeAll(async () => {
  telemetry = await installTelemetry({ spanProcessors: [new SimpleSpanProcessor(spans)], metricReaders: [reader] });
  ({ stack } = await startE2eStack());
  const created = await stack.createToken({ maxUses: 2 });
  token = created.token;
  const enrolmentUrl = created.enrolmentUrl;
  const plan = planFor({ immutable: true, arch: "amd64", catalog: stack.artifacts.catalog });
  // One throttled PUT of an Arc machine: the SDK waits it out, the counter sees the 429.
  stack.arm.faults.inject({ method: "PUT", path: /\/machines\//, status: 429, retryAfterMs: 200, times: 1 });
  fleet = await startFleet({
    stack,
    enrolmentUrl,
    hostSide: sandboxHostSide,
    specs: [
      { name: "edge-01", immutable: true, arch: "amd64", index: 1 },
      { name: "edge-02", immutable: true, arch: "amd64", index: 2, failure: failureFor("sysctl", plan, stack.artifacts) },
    ],
  });
  const outcomes = await fleet.settle(90_000);
  ready = outcomes.find((o) => o.node.spec.name === "edge-01")!;
  failed = outcomes.find((o) => o.node.spec.name === "edge-02")!;
  metrics = (await reader.collect()).resourceMetrics;
}, 120_000);

afterAll(async () => {
  await fleet?.stop({ removeRoots: true });
  await stack?.close();
  await telemetry?.shutdown();
});

const finished = () => spans.getFinishedSpans();
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const nodeSpans = (nodeId: string) => finished().filter((s) => s.attributes["flexnode.node"] === nodeId);
const enrolSpan = (nodeId: string) => finished().find((s) => s.name === "enrol" && s.attributes["flexnode.node"] === nodeId)!;

describe("one trace per onboarding, enrolment to Ready", () => {
  it("onboarded one node and failed the other, as set up", () => {
    expect([ready.status, failed.status]).toEqual(["Ready", "Failed"]);
  });

  it("puts every span of the node into the enrolment's trace: episodes, activities, SDK calls, node steps", () => {
    const nodeId = ready.node.nodeId!;
    const enrol = enrolSpan(nodeId);
    expect(enrol).toBeDefined();
    const trace = traceOf(enrol);
    const mine = nodeSpans(nodeId);
    expect(mine.filter((s) => traceOf(s) !== trace).map((s) => s.name)).toEqual([]);
    const inTrace = finished().filter((s) => traceOf(s) === trace);
    const names = new Set(inTrace.map((s) => s.name));
    // Every activity the saga ran to Ready, and saga episodes.
    for (const activity of [
      "reserve",
      "openMailbox",
      "putArcMachine",
      "grantRole",
      "clusterInfo",
      "issueBootstrapToken",
      "sendStep",
      "checkNodeReady",
      "markReady",
    ])
      expect(names).toContain(`activity onboard_${activity}`);
    expect(names).toContain("activity events_publishLifecycleEvent");
    expect(inTrace.filter((s) => s.name === "saga onboardNode").length).toBeGreaterThan(10);
    // Each plan step as the node ran it, under the sendStep activity that sent its envelope.
    const plan = planFor({ immutable: true, arch: "amd64", catalog: stack.artifacts.catalog });
    const sends = new Set(inTrace.filter((s) => s.name === "activity onboard_sendStep").map((s) => s.spanContext().spanId));
    for (const step of plan) {
      const span = inTrace.find((s) => s.name === `node step ${step.stepId}`);
      expect(span, step.stepId).toBeDefined();
      expect(sends.has(parentOf(span!)!), step.stepId).toBe(true);
    }
    // The SDKs' own spans: Service Bus, Tables, Event Grid (data-plane operations), ARM (the pipeline's HTTP spans of the
    // management clients, which make no operation spans), and the Kubernetes client's.
    const namespaces = new Set(inTrace.map((s) => s.attributes["az.namespace"]));
    for (const ns of ["Microsoft.ServiceBus", "Microsoft.Data.Tables", "Microsoft.Messaging.EventGrid"]) expect(namespaces).toContain(ns);
    const urls = inTrace.map((s) => String(s.attributes["http.url"] ?? ""));
    for (const arm of ["Microsoft.HybridCompute/machines", "Microsoft.Authorization/roleAssignments", "Microsoft.ContainerService/managedClusters"])
      expect(
        urls.some((u) => u.includes(`/providers/${arm}`)),
        arm,
      ).toBe(true);
    expect(names).toContain("kube POST");
    // The figure the closing note quotes.
    process.stdout.write(`spans in the onboarding trace: ${inTrace.length} (${[...names].length} distinct names)\n`);
  });

  it("gives each onboarding a trace of its own", () => {
    expect(traceOf(enrolSpan(ready.node.nodeId!))).not.toBe(traceOf(enrolSpan(failed.node.nodeId!)));
    const failedTrace = traceOf(enrolSpan(failed.node.nodeId!));
    expect(
      nodeSpans(failed.node.nodeId!)
        .filter((s) => traceOf(s) !== failedTrace)
        .map((s) => s.name),
    ).toEqual([]);
    expect(finished().some((s) => traceOf(s) === failedTrace && s.name === "node step reset")).toBe(true);
    process.stdout.write(`spans in the failed onboarding's trace: ${finished().filter((s) => traceOf(s) === failedTrace).length}\n`);
  });

  it("announced two lifecycle events per node: enrolled, then ready or failed (the closing note's figure)", () => {
    const typesOf = (o: NodeOutcome) =>
      stack.events
        .events()
        .filter((e) => e.subject === `nodes/${o.node.nodeId!}`)
        .map((e) => e.type);
    expect(typesOf(ready)).toEqual(["dev.flexnode.node.enrolled", "dev.flexnode.node.ready"]);
    expect(typesOf(failed)).toEqual(["dev.flexnode.node.enrolled", "dev.flexnode.node.failed"]);
  });
});

describe("no secret in any attribute", () => {
  it("holds none of the token, the node key, the kubeconfig's token, the bootstrap token or a SAS", async () => {
    const identity = (await loadIdentity(ready.node.root))!;
    const jwk = identity.privateKey.export({ format: "jwk" });
    const kubeconfig = await readFile(path.join(ready.node.root, "/var/lib/kubelet/bootstrap-kubeconfig"), "utf8");
    const bootstrapToken = /token:\s*(\S+)/.exec(kubeconfig)![1]!;
    const sasKey = /SharedAccessKey=([^;]+)/.exec(process.env["SERVICEBUS_CONNECTION"] ?? "")?.[1];
    const secrets = [token, token.split(".").at(-1)!, jwk.d!, bootstrapToken, bootstrapToken.split(".")[1]!, ...(sasKey ? [sasKey] : [])];
    expect(secrets.every((s) => s.length >= 8)).toBe(true);

    const values: { where: string; value: string }[] = [];
    const add = (where: string, attributes: Record<string, unknown> | undefined) => {
      for (const [k, v] of Object.entries(attributes ?? {})) values.push({ where: `${where} ${k}`, value: Array.isArray(v) ? v.join(" ") : String(v) });
    };
    for (const s of finished()) {
      values.push({ where: `span name`, value: s.name }, { where: `${s.name} status`, value: s.status.message ?? "" });
      add(s.name, s.attributes);
      for (const e of s.events) add(`${s.name} event ${e.name}`, e.attributes);
      add(`${s.name} resource`, s.resource.attributes);
    }
    for (const scope of metrics.scopeMetrics)
      for (const m of scope.metrics) for (const p of m.dataPoints as { attributes: Record<string, unknown> }[]) add(m.descriptor.name, p.attributes);
    expect(values.length).toBeGreaterThan(1000);

    const leaks = values.filter(({ value }) => secrets.some((secret) => value.includes(secret)) || findSecrets({ value }).length > 0);
    expect(leaks).toEqual([]);
  });
});

describe("metrics", () => {
  const metric = (name: string) => metrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  const points = (name: string) => (metric(name)?.dataPoints ?? []) as { attributes: Record<string, unknown>; value: unknown }[];

  it("counts enrolments by outcome", () => {
    expect(points("flexnode.enrolments")).toContainEqual(
      expect.objectContaining({ attributes: { "flexnode.enrol.outcome": "created", "flexnode.pool": "demo" }, value: 2 }),
    );
  });

  it("counts sagas by outcome and the phase they ended in", () => {
    const sagas = points("flexnode.sagas");
    expect(sagas).toContainEqual(
      expect.objectContaining({ attributes: { "flexnode.saga": "onboardNode", "flexnode.saga.outcome": "Ready", "flexnode.saga.phase": "done" }, value: 1 }),
    );
    expect(sagas).toContainEqual(
      expect.objectContaining({
        attributes: {
          "flexnode.saga": "onboardNode",
          "flexnode.saga.outcome": "Failed",
          "flexnode.saga.phase": "runNodeSteps",
          "error.type": "NodeStepFailed",
        },
        value: 1,
      }),
    );
  });

  it("records step durations by step and outcome, and the time to Ready", () => {
    expect(metric("flexnode.step.duration")?.dataPointType).toBe(DataPointType.HISTOGRAM);
    const steps = points("flexnode.step.duration");
    const plan = planFor({ immutable: true, arch: "amd64", catalog: stack.artifacts.catalog });
    for (const step of plan) expect(steps.map((p) => p.attributes["flexnode.step"])).toContain(step.stepId);
    expect(steps).toContainEqual(
      expect.objectContaining({ attributes: expect.objectContaining({ "flexnode.step": "sysctl", "flexnode.step.outcome": "failed" }) }),
    );
    const ttr = points("flexnode.onboarding.time_to_ready");
    expect(ttr).toHaveLength(1);
    expect(ttr[0]!.value).toMatchObject({ count: 1 });
  });

  it("counts ARM's 429s by method and resource type", () => {
    expect(points("flexnode.arm.throttles")).toContainEqual(
      expect.objectContaining({ attributes: { "http.request.method": "PUT", "flexnode.arm.resource_type": "Microsoft.HybridCompute/machines" }, value: 1 }),
    );
  });
});
