/**
 * The agent as a library: what the CLI runs, and what the local sandbox and end-to-end tests drive directly (a sandbox
 * root instead of "/", a recording HostCommands instead of systemctl, live progress through onEvent).
 */
import type { ServiceBusClientOptions } from "@azure/service-bus";
import type { NodeFacts } from "../../contract/node-facts.js";
import type { StepParamsSchemas } from "../../contract/step-envelope.js";
import type { EventSink } from "./agent-events.js";
import { acquireAgentLock } from "./agent-lock.js";
import { AgentStateStore, type AgentState } from "./agent-state.js";
import type { BackoffPolicy, Sleep } from "./backoff.js";
import { requestEnrolment } from "./enrol-client.js";
import { EnrolmentTokenSchema, parseEnrolmentUrl, ServiceUrlError } from "./enrolment-url.js";
import { gatherFacts, type SystemInfo } from "./facts.js";
import { factsDigest, reportChangedFacts } from "./facts-report.js";
import { nodeHttpTransport, type HttpTransport } from "./http-transport.js";
import { loadIdentity, loadOrCreateIdentity } from "./identity.js";
import { describeChange, Manifest } from "./manifest.js";
import { NoMailboxError, runMailboxLoop, type DrainOptions } from "./mailbox-loop.js";
import { NodeApiClient } from "./node-api-client.js";
import type { ArchiveLimits, HostCommands, RunStep } from "./ports.js";
import type { RetryContext } from "./retrying-call.js";

export interface ServiceAccessOptions {
  /** Extra PEM CA certificates trusted for the service (and handed to steps for artifact downloads). */
  ca?: string;
  /** Replaces the HTTPS transport (tests add faults with it); default node:https with `ca`. */
  http?: HttpTransport;
  now?: () => Date;
  sleep?: Sleep;
  random?: () => number;
  backoff?: Partial<BackoffPolicy>;
  signal?: AbortSignal;
}

export interface EnrolAgentOptions extends ServiceAccessOptions {
  /** Every host path lives under it ("/" on a real node). */
  root: string;
  /** The enrolment URL (`https://<service>/api/enrol#<token>`) or the service's base URL. */
  url: string;
  /** The token, when the URL does not carry it. */
  token?: string;
  /** Where architecture and addresses come from (default: this machine). */
  system?: SystemInfo;
  /** Human progress lines ("retrying in 12 s: HTTP 429"). Never carries the token. */
  onProgress?(line: string): void;
}

export interface EnrolAgentResult {
  /** 201 enrolled now, 200 already enrolled with this key, 202 waiting for approval. */
  httpStatus: 200 | 201 | 202;
  nodeId: string;
  pool: string;
  status: string;
  approval?: string;
  keyId: string;
  identityCreated: boolean;
  serviceUrl: string;
  facts: NodeFacts;
  notes: string[];
}

export class MissingTokenError extends Error {
  readonly code = "missing_token";
  constructor() {
    super("no enrolment token: put it after '#' in the enrolment URL, or pass --token / set `token` in agent.json");
    this.name = "MissingTokenError";
  }
}

function retryContext(o: ServiceAccessOptions, onProgress?: (line: string) => void): RetryContext {
  return {
    http: o.http ?? nodeHttpTransport(o.ca !== undefined ? { ca: o.ca } : {}),
    now: o.now ?? (() => new Date()),
    ...(o.sleep ? { sleep: o.sleep } : {}),
    ...(o.random ? { random: o.random } : {}),
    ...(o.backoff ? { backoff: o.backoff } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    onRetry: ({ operation, attempt, delayMs, reason }) => onProgress?.(`${operation}: ${reason}; retry ${attempt} in ${Math.ceil(delayMs / 1000)} s`),
  };
}

/** `flexnode-agent enrol`: identity (created once), facts, POST /api/enrol, state.json. Safe to run again. */
export async function enrolAgent(o: EnrolAgentOptions): Promise<EnrolAgentResult> {
  const progress = o.onProgress ?? (() => undefined);
  const target = parseEnrolmentUrl(o.url, "url");
  const token = o.token ?? target.token;
  if (token === undefined) throw new MissingTokenError();
  if (!EnrolmentTokenSchema.safeParse(token).success) throw new ServiceUrlError("token", "is not an enrolment token (fnt.<id>.<secret>)");

  const identity = await loadOrCreateIdentity(o.root);
  progress(`identity: ${identity.created ? "created" : "using"} node key ${identity.keyId}`);
  const { facts, notes } = await gatherFacts({ root: o.root, ...(o.system ? { system: o.system } : {}) });
  for (const note of notes) progress(`facts: ${note}`);
  const immutable = Object.entries(facts.immutable)
    .filter(([, v]) => v)
    .map(([k]) => k);
  progress(
    `facts: ${facts.hostname}, ${facts.osRelease.prettyName ?? facts.osRelease.id}, ${facts.arch}, kernel ${facts.kernel}${immutable.length ? `, immutable (${immutable.join(", ")})` : ""}`,
  );
  progress(`enrolling with ${target.serviceUrl}`);

  const { httpStatus, response } = await requestEnrolment(
    { serviceUrl: target.serviceUrl, token, facts, publicKey: identity.publicKey, privateKey: identity.privateKey },
    retryContext(o, progress),
  );

  const store = new AgentStateStore(o.root);
  const previous = await store.load().catch(() => undefined);
  const now = (o.now ?? (() => new Date()))();
  // Same node again (a retried enrol): keep what the mailbox loop remembers; anything else starts clean.
  const keep = previous && previous.nodeId === response.nodeId && previous.keyId === response.keyId ? previous : undefined;
  const state: AgentState = {
    version: 1,
    nodeId: response.nodeId,
    pool: response.pool,
    keyId: response.keyId,
    serviceUrl: target.serviceUrl,
    service: response.service,
    nodeApi: response.nodeApi,
    poll: response.poll,
    status: response.status,
    ...(response.approval !== undefined ? { approval: response.approval } : {}),
    enrolledAt: keep?.enrolledAt ?? now.toISOString(),
    // A new enrolment records the facts it carried; a replayed one (200) leaves the record as it was.
    ...(httpStatus !== 200 ? { factsDigest: factsDigest(facts) } : keep?.factsDigest ? { factsDigest: keep.factsDigest } : {}),
    ...(response.mailbox
      ? {
          mailbox: {
            namespace: response.mailbox.namespace,
            queue: response.mailbox.queue,
            resultsQueue: response.mailbox.resultsQueue,
            expiresAt: response.mailbox.expiresAt,
            refreshAfter: response.mailbox.refreshAfter,
          },
        }
      : {}),
    ...(keep?.current ? { current: keep.current } : {}),
    results: keep?.results ?? [],
    answered: keep?.answered ?? [],
  };
  await store.save(state);
  const what =
    httpStatus === 201 ? "enrolled" : httpStatus === 200 ? "already enrolled" : `enrolled, waiting for approval (${response.approval ?? "approval required"})`;
  progress(`${what}: node ${response.nodeId} in pool ${response.pool}, status ${response.status}`);
  return {
    httpStatus,
    nodeId: response.nodeId,
    pool: response.pool,
    status: response.status,
    ...(response.approval !== undefined ? { approval: response.approval } : {}),
    keyId: response.keyId,
    identityCreated: identity.created,
    serviceUrl: target.serviceUrl,
    facts,
    notes,
  };
}

export interface HostSide {
  runStep: RunStep;
  /** Digest of the applied-state manifest as it is (read only). */
  manifestDigest(root: string): Promise<string>;
  paramsSchemas?: StepParamsSchemas;
}

export interface RunAgentOptions extends ServiceAccessOptions {
  root: string;
  host: HostCommands;
  signal: AbortSignal;
  onEvent?: EventSink;
  /** The executors (default: node-agent/src/run-step.ts and the manifest). */
  hostSide: HostSide;
  /** Longest step the message lock is kept for (default 60 minutes). */
  maxStepMs?: number;
  /** Caps on what one archive may unpack (default: executors/archive.ts). */
  archiveLimits?: ArchiveLimits;
  serviceBus?: ServiceBusClientOptions;
  stopGraceMs?: number;
  /** Lock time kept beyond maxStepMs (default 5 minutes). */
  lockMarginMs?: number;
  /** Longest wait for a settlement's confirmation (default 90 s). */
  settleTimeoutMs?: number;
  /** Drain mode: `run` ends once the node is Ready and its queue is quiet (drain-mode.ts). */
  drain?: DrainOptions;
  /** Where architecture and addresses come from for the facts report (default: this machine). */
  system?: SystemInfo;
}

/** `flexnode-agent run`: the mailbox loop until `signal` aborts. Needs a prior enrolment. */
export async function runAgent(o: RunAgentOptions): Promise<void> {
  const store = new AgentStateStore(o.root);
  const state = await store.require();
  const identity = await loadIdentity(o.root);
  if (!identity || identity.keyId !== state.keyId) {
    throw new Error(`the node key under ${o.root} is not the key this node enrolled with (${state.keyId}); enrol again`);
  }
  const lock = await acquireAgentLock(o.root, "run");
  try {
    await runLocked(o, store, identity);
  } finally {
    await lock.release();
  }
}

async function runLocked(o: RunAgentOptions, store: AgentStateStore, identity: NonNullable<Awaited<ReturnType<typeof loadIdentity>>>): Promise<void> {
  const state = await store.require();
  const now = o.now ?? (() => new Date());
  const onEvent = o.onEvent ?? (() => undefined);
  const apiWith = (signal: AbortSignal) =>
    new NodeApiClient({
      ...retryContext({ ...o, signal }, (line) => onEvent({ type: "error", where: "node-api", message: line })),
      serviceUrl: state.serviceUrl,
      privateKey: identity.privateKey,
      paths: state.nodeApi,
    });
  const api = apiWith(o.signal);
  // Alongside the loop, not before it: a report that retries through a service outage must not hold steps back. Nor
  // may it hold the end of the run (a drained run, and the agent lock): it stops with the loop, for the next start.
  const factsStop = new AbortController();
  const facts = reportChangedFacts({
    root: o.root,
    store,
    api: apiWith(AbortSignal.any([o.signal, factsStop.signal])),
    onEvent,
    ...(o.system ? { system: o.system } : {}),
  });
  const loop = runMailboxLoop({
    store,
    identity,
    api,
    runStep: o.hostSide.runStep,
    manifestDigest: () => o.hostSide.manifestDigest(o.root),
    root: o.root,
    host: o.host,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.hostSide.paramsSchemas ? { paramsSchemas: o.hostSide.paramsSchemas } : {}),
    maxStepMs: o.maxStepMs ?? 60 * 60_000,
    ...(o.archiveLimits ? { archiveLimits: o.archiveLimits } : {}),
    signal: o.signal,
    now,
    onEvent,
    ...(o.sleep ? { sleep: o.sleep } : {}),
    ...(o.serviceBus ? { serviceBus: o.serviceBus } : {}),
    ...(o.stopGraceMs !== undefined ? { stopGraceMs: o.stopGraceMs } : {}),
    ...(o.lockMarginMs !== undefined ? { lockMarginMs: o.lockMarginMs } : {}),
    ...(o.settleTimeoutMs !== undefined ? { settleTimeoutMs: o.settleTimeoutMs } : {}),
    ...(o.drain ? { drain: o.drain } : {}),
  });
  try {
    await loop;
  } catch (error) {
    // In drain mode the timer would start an agent with nothing to do every interval: stop it until the next boot.
    if (error instanceof NoMailboxError && o.drain) {
      const stopped = await o.host.run("systemctl", ["stop", o.drain.timerUnit]);
      onEvent({
        type: "error",
        where: "drain",
        message:
          stopped.code === 0
            ? `stopped ${o.drain.timerUnit}: this node has no mailbox (${error.status})`
            : `could not stop ${o.drain.timerUnit}: ${stopped.stderr.trim()}`,
      });
    }
    throw error;
  } finally {
    factsStop.abort();
    await facts;
  }
}

/** Drain mode's defaults: the timer flexnode-agent.timer, 5 s of quiet, questions again every 15 s. */
export const DRAIN_DEFAULTS: DrainOptions = { idleMs: 5_000, recheckMs: 15_000, timerUnit: "flexnode-agent.timer" };

export interface AgentStatus {
  enrolled: boolean;
  identity?: { keyId: string; publicKey: string };
  node?: { nodeId: string; pool: string; status: string; approval?: string; serviceUrl: string; enrolledAt: string };
  mailbox?: { namespace: string; queue: string; resultsQueue: string; credentialsExpireAt: string; refreshAfter: string };
  currentStep?: { sagaId: string; stepId: string; attempt: number; kind: string; startedAt: string };
  /** Step attempts answered recently, oldest first. */
  recentResults: { sagaId: string; stepId: string; attempt: number; outcome: string; finishedAt: string; errorCode?: string }[];
  /** What the applied-state manifest records (what `reset` would undo), oldest first. */
  applied: { stepId: string; change: string }[];
}

/** `flexnode-agent status`: what this node is, from its own files only (no network). */
export async function agentStatus(root: string): Promise<AgentStatus> {
  const identity = await loadIdentity(root);
  const state = await new AgentStateStore(root).load();
  const manifest = await Manifest.open(root);
  return {
    enrolled: state !== undefined,
    ...(identity ? { identity: { keyId: identity.keyId, publicKey: identity.publicKey } } : {}),
    ...(state
      ? {
          node: {
            nodeId: state.nodeId,
            pool: state.pool,
            status: state.status,
            ...(state.approval !== undefined ? { approval: state.approval } : {}),
            serviceUrl: state.serviceUrl,
            enrolledAt: state.enrolledAt,
          },
          ...(state.mailbox
            ? {
                mailbox: {
                  namespace: state.mailbox.namespace,
                  queue: state.mailbox.queue,
                  resultsQueue: state.mailbox.resultsQueue,
                  credentialsExpireAt: state.mailbox.expiresAt,
                  refreshAfter: state.mailbox.refreshAfter,
                },
              }
            : {}),
          ...(state.current ? { currentStep: state.current } : {}),
        }
      : {}),
    recentResults: (state?.results ?? []).map((r) => ({
      sagaId: r.sagaId,
      stepId: r.stepId,
      attempt: r.attempt,
      outcome: r.result.outcome,
      finishedAt: r.result.finishedAt,
      ...(r.result.outcome === "failed" ? { errorCode: r.result.error.code } : {}),
    })),
    applied: manifest.changes.map((c) => ({ stepId: c.stepId, change: describeChange(c) })),
  };
}
