/**
 * `npm start`: the local sandbox. Starts the whole service on http://127.0.0.1:7071 against emulated Azure, creates a
 * demo pool and an enrolment token through the admin API, and onboards N real agents (each in its own sandbox root)
 * through the enrolment URL, printing progress live and a summary at the end; then keeps serving until Ctrl+C.
 *
 *   npm start -- [--nodes N] [--once] [--fail-at <step or saga phase>] [--arm-throttle] [--os flatcar|ubuntu] [--json] [--port P] [--timeout S]
 *
 * Telemetry as the function app's settings say (orchestrations/observability/telemetry.ts): `FLEXNODE_TELEMETRY=console`
 * prints every span and, every 10 s, the metrics; `OTEL_EXPORTER_OTLP_ENDPOINT` sends them to a collector.
 */
// Must come first: the function modules register through @azure/functions-core, which the stand-in provides.
import "../functions-host/setup.js";
import { parseArgs } from "node:util";
import * as z from "zod";
import { startTelemetry, type Telemetry } from "../../orchestrations/observability/telemetry.js";
import { ARM_THROTTLE, injectAzureFault, isSagaPhase, SAGA_PHASES, type AzureFault } from "./azure-faults.js";
import { DEMO_POOL } from "./estate.js";
import { failureFor, planFor } from "./failure-injection.js";
import { startFleet, type Fleet } from "./fleet.js";
import { sandboxHostSide } from "./host-side.js";
import { ProgressPrinter } from "./progress.js";
import type { NodeSpec } from "./sandbox-node.js";
import { startStack, type Stack } from "./stack.js";
import { formatSummary, summarize } from "./summary.js";

const USAGE = `usage: npm start -- [options]
  --nodes N          nodes to onboard, each a real agent in its own sandbox root (default 1, at most 100)
  --once             exit when every node is Ready or Failed (exit code 0 only if all are Ready)
  --fail-at WHERE    make that plan step fail on every node (e.g. sysctl, container-runtime, start-kubelet), or that saga
                     phase fail on the Azure side (${SAGA_PHASES.join(", ")})
  --arm-throttle     shrink ARM's throttling buckets so the service's calls meet 429 + Retry-After
  --os OS            flatcar (immutable: sysext images; default) or ubuntu (mutable: /opt/flexnode)
  --json             end with one JSON line summarising the run
  --port P           port of the function app on 127.0.0.1 (default 7071, as func start; 0 = any free port)
  --timeout S        seconds to wait for the nodes before summarising anyway (default 120)
  --help`;

const Args = z.strictObject({
  nodes: z.coerce.number().int().min(1).max(100).default(1),
  once: z.boolean().default(false),
  "fail-at": z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, "must be a step id such as sysctl or a saga phase such as grantAccess")
    .optional(),
  "arm-throttle": z.boolean().default(false),
  os: z.enum(["flatcar", "ubuntu"]).default("flatcar"),
  json: z.boolean().default(false),
  port: z.coerce.number().int().min(0).max(65_535).default(7071),
  timeout: z.coerce.number().int().min(5).max(3_600).default(120),
  help: z.boolean().default(false),
});
type Args = z.infer<typeof Args>;

const out = (line = ""): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

function parse(argv: string[]): Args | undefined {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        nodes: { type: "string" },
        once: { type: "boolean" },
        "fail-at": { type: "string" },
        "arm-throttle": { type: "boolean" },
        os: { type: "string" },
        json: { type: "boolean" },
        port: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    err(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return undefined;
  }
  const parsed = Args.safeParse(values);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) err(`--${issue.path.join(".")}: ${issue.message}`);
    err(USAGE);
    return undefined;
  }
  return parsed.data;
}

async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (!args) return 2;
  if (args.help) {
    out(USAGE);
    return 0;
  }
  const t0 = Date.now();
  const opts = args;
  let stack: Stack | undefined;
  let fleet: Fleet | undefined;
  const interrupted = new Promise<"signal">((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve("signal"));
  });
  // An error nobody awaited must still end in the finally below: otherwise Azurite outlives the sandbox.
  const fatal = new Promise<never>((_, reject) => {
    process.once("uncaughtException", reject);
    process.once("unhandledRejection", (reason) => reject(reason instanceof Error ? reason : new Error(String(reason))));
  });
  const serviceLog: string[] = [];
  let telemetry: Telemetry | undefined;

  try {
    return await Promise.race([run(), fatal]);
  } finally {
    await fleet?.stop({ removeRoots: true });
    await stack?.close();
    await telemetry?.shutdown();
  }

  async function run(): Promise<number> {
    out("flexnode local sandbox: the real service, the real agent, emulated Azure. Nothing leaves this machine.");
    telemetry = await startTelemetry(process.env);
    try {
      stack = await startStack({ port: opts.port, log: (line) => serviceLog.push(line), ...(opts["arm-throttle"] ? { armThrottling: ARM_THROTTLE } : {}) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
        err(`port ${opts.port} on 127.0.0.1 is in use (is \`func start\` or another sandbox running?); choose another with --port, or --port 0`);
        return 1;
      }
      throw error;
    }
    const s = stack;
    out(`  function app      ${s.url}  (every function of this repo on a Functions host stand-in; Durable Functions simulated, real time)`);
    out(`  storage           Azurite, in memory  ${s.azurite ? (s.azurite.connectionString.match(/TableEndpoint=([^;]+)/)?.[1] ?? "") : "(given)"}`);
    out(`  ARM               emulated  ${s.armEndpoint.endpoint}  (subscription, AKS cluster, Arc machines, role assignments, throttling)`);
    out(`  Service Bus       emulated  ${s.sbRunning.endpoint}  (node mailboxes, node-results)`);
    out(`  Kubernetes API    emulated  ${s.kubeServer.server}  (the AKS cluster's API server: bootstrap tokens, RBAC, Nodes)`);
    out(`  artifact mirror   emulated  ${s.artifacts.origin}  (small labelled artifacts, pinned by sha256)`);
    out(`  Event Grid topic  local receiver  ${s.events.endpoint}  (lifecycle CloudEvents, printed as they arrive)`);
    out(`  fleet page        ${s.url}/api/manage/ui  (send Authorization: Bearer <admin token>)`);
    out(`  telemetry         ${telemetryLine(telemetry.mode)}`);
    s.events.onEvent = (e) => out(`  [event] ${e.type} ${String(e.subject)} id=${e.id} ${JSON.stringify(e.data)}`);
    out(
      `  nodes             ${opts.nodes} × the real flexnode-agent in a sandbox root each; systemctl/modprobe/sysctl/systemd-sysext and the kubelet simulated`,
    );

    await s.createDemoPool(Math.max(20, opts.nodes));
    const { enrolmentUrl } = await s.createToken({ maxUses: opts.nodes, expiresInHours: 1, description: "npm start" });
    out(`\nCreated pool '${DEMO_POOL}' and an enrolment token for ${opts.nodes} node(s) through the admin API.`);
    out(`Enrolment URL: ${enrolmentUrl.replace(/#.*/, "#<token, shown once>")}`);

    const immutable = opts.os === "flatcar";
    let failure: NodeSpec["failure"];
    if (opts["arm-throttle"]) {
      const w = ARM_THROTTLE.writes!;
      out(`ARM throttling: ${w.burst} writes at once, refilled at ${w.refillPerSecond}/s (Azure: 200, 10/s); 429s carry Retry-After.`);
    }
    let azureFault: AzureFault | undefined;
    if (opts["fail-at"] && isSagaPhase(opts["fail-at"])) {
      const fault = (azureFault = injectAzureFault(s, opts["fail-at"]));
      out(`Failure injected in saga phase '${fault.phase}' on the Azure side: ${fault.how}.`);
    } else if (opts["fail-at"]) {
      failure = failureFor(opts["fail-at"], planFor({ immutable, arch: "amd64", catalog: s.artifacts.catalog }), s.artifacts);
      if (failure.artifact) s.artifacts.corrupt(failure.artifact);
      out(`Failure injected at step '${failure.stepId}' (${failure.kind}): ${failure.how}.`);
    }
    const specs: NodeSpec[] = Array.from({ length: opts.nodes }, (_, i) => ({
      name: `edge-${String(i + 1).padStart(2, "0")}`,
      immutable,
      arch: "amd64",
      index: i + 1,
      ...(failure ? { failure } : {}),
    }));
    out("");
    const startedAt = new Map<string, number>();
    const printer = new ProgressPrinter(
      (node) => startedAt.get(node.spec.name),
      out,
      specs.map((x) => x.name),
    );
    for (const spec of specs) startedAt.set(spec.name, Date.now());
    fleet = await startFleet({ stack: s, specs, enrolmentUrl, hostSide: sandboxHostSide, onEvent: (e) => printer.handle(e) });
    const outcomes = await Promise.race([fleet.settle(opts.timeout * 1000), interrupted]);
    if (outcomes === "signal") {
      out("\nInterrupted; shutting down.");
      return 130;
    }
    const summary = summarize(s, outcomes, Date.now() - t0);
    // Azure recovers: the fault lasts for the first run only, so `flexnode retry <node>` afterwards can succeed.
    azureFault?.clear();
    const f = fleet;
    for (const line of formatSummary(summary)) out(line);
    if (serviceLog.length > 0) out(`(service log: ${serviceLog.length} line(s); last: ${serviceLog.at(-1)})`);

    if (!opts.once) {
      printCurlExamples(s, fleet);
      if (opts.json) out(JSON.stringify(summary));
      out("\nServing until Ctrl+C (the agents keep listening on their mailboxes).");
      if (f.nodes.some((n) => n.endedWithoutMailbox !== undefined)) {
        out("The agents of failed nodes have ended (exit 6); after `flexnode retry <node>` the sandbox restarts them, as an operator");
        out("would with `systemctl restart flexnode-agent` on the machine.");
      }
      await Promise.race([restartRetriedAgents(s, f, interrupted), interrupted]);
      out("\nShutting down.");
      return summary.ok ? 0 : 1;
    }
    if (opts.json) out(JSON.stringify(summary));
    return summary.ok ? 0 : 1;
  }
}

function telemetryLine(mode: Telemetry["mode"]): string {
  if (mode === "console") return "spans and metrics printed below (FLEXNODE_TELEMETRY=console)";
  if (mode === "otlp") return `OTLP to ${process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? ""}`;
  if (mode === "azure-monitor") return "Azure Monitor (APPLICATIONINSIGHTS_CONNECTION_STRING)";
  return "off (FLEXNODE_TELEMETRY=console prints spans and metrics)";
}

/** Plays the operator on the machine: an agent that ended because its node failed is restarted once the node is retried. */
async function restartRetriedAgents(s: Stack, fleet: Fleet, stop: Promise<unknown>): Promise<void> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  while (!stopped) {
    for (const node of fleet.nodes.filter((n) => n.endedWithoutMailbox !== undefined && n.nodeId)) {
      const view = await s.admin("GET", `/api/manage/nodes/${node.nodeId!}`);
      const status = (view.json as { status?: string } | undefined)?.status;
      if (status === "Enrolling" || status === "Onboarding") await node.restart();
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

function printCurlExamples(s: Stack, fleet: Fleet): void {
  const id = fleet.nodes[0]?.nodeId ?? "<nodeId>";
  out(`
The admin API trusts the principal header App Service authentication adds. The sandbox plays that part: a request
with this bearer token gets the header of 'sandbox-admin' (app role FlexNode.Admin); any x-ms-client-principal a
caller sends is stripped, as App Service does.

  export FLEXNODE_URL=${s.url} FLEXNODE_ADMIN_TOKEN=${s.adminToken}
  npm run -s flexnode -- fleet            # the admin CLI (README, "Operating a fleet")
  curl -s ${s.url}/api/healthz
  curl -s -H "Authorization: Bearer $FLEXNODE_ADMIN_TOKEN" ${s.url}/api/manage/nodes
  curl -s -H "Authorization: Bearer $FLEXNODE_ADMIN_TOKEN" ${s.url}/api/manage/nodes/${id}
  curl -s -H "Authorization: Bearer $FLEXNODE_ADMIN_TOKEN" ${s.url}/api/manage/pools/${DEMO_POOL}
  curl -s -X POST -H "Authorization: Bearer $FLEXNODE_ADMIN_TOKEN" -H 'content-type: application/json' \\
       -d '{"maxUses":1}' ${s.url}/api/manage/pools/${DEMO_POOL}/tokens
  curl -s -X POST -H "Authorization: Bearer $FLEXNODE_ADMIN_TOKEN" ${s.url}/api/manage/nodes/${id}/decommission
  curl -s ${s.url}/api/openapi.json`);
}

const code = await main(process.argv.slice(2)).catch((error: unknown) => {
  err(`sandbox failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
});
process.exitCode = code;
// Everything is closed by now; if a library still holds a timer or socket, do not let it keep the process alive.
setTimeout(() => process.exit(code), 2_000).unref();
