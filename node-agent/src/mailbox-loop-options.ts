/** What the service loop is given (mailbox-loop.ts); each of its parts takes the slice it needs. */
import type { ServiceBusClientOptions } from "@azure/service-bus";
import type { MailboxCredentials } from "../../contract/mailbox-credentials.js";
import type { StepParamsSchemas } from "../../contract/step-envelope.js";
import type { AgentEvent } from "./agent-events.js";
import type { AgentStateStore } from "./agent-state.js";
import type { Sleep } from "./backoff.js";
import type { NodeIdentity } from "./identity.js";
import type { NodeStatusView } from "./node-api-client.js";
import type { ArchiveLimits, HostCommands, RunStep, SecretSource } from "./ports.js";

export interface MailboxApi extends SecretSource {
  mailboxCredentials(): Promise<MailboxCredentials>;
  status(): Promise<NodeStatusView>;
}

export interface MailboxLoopOptions {
  store: AgentStateStore;
  identity: NodeIdentity;
  api: MailboxApi;
  runStep: RunStep;
  /** sha256:<hex> of the applied-state manifest as it is now (read only), for results of steps that never ran. */
  manifestDigest(): Promise<string>;
  root: string;
  host: HostCommands;
  ca?: string;
  paramsSchemas?: StepParamsSchemas;
  /** Longest step: the message lock is renewed that long (plus a margin). */
  maxStepMs: number;
  archiveLimits?: ArchiveLimits;
  signal: AbortSignal;
  now(): Date;
  onEvent(event: AgentEvent): void;
  sleep?: Sleep;
  /** Service Bus client options (tests shorten retries). */
  serviceBus?: ServiceBusClientOptions;
  /** How long stopping waits for a running step before closing anyway (its lock then lapses and it is redelivered). */
  stopGraceMs?: number;
  /** Lock time kept beyond `maxStepMs` for signing, recording and sending the result (default 5 minutes). */
  lockMarginMs?: number;
  /** Longest wait for the broker to confirm a settlement before moving on (default 90 s). */
  settleTimeoutMs?: number;
  /** Drain mode: end once the node is Ready and the queue is quiet (see drain-mode.ts). */
  drain?: DrainOptions;
}

export interface DrainOptions {
  /** Quiet time on the queue before asking whether to end. */
  idleMs: number;
  /** Wait before asking again (node not Ready yet, timer not active, service unreachable). */
  recheckMs: number;
  /** The unit that starts the agent again; the loop ends only while it is active. */
  timerUnit: string;
}
