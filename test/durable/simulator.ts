/**
 * The Durable extension + DTFx stand-in. It plays the C# side of the out-of-proc protocol against the REAL
 * durable-functions 3.x replay engine: each episode appends OrchestratorStarted plus exactly one new event (a legal
 * DTFx interleaving that keeps id allocation deterministic), invokes the registered orchestrator through the Functions
 * host stand-in, checks the returned actions against the previous episode (determinism), and schedules the new ones:
 * activities, retries (DTFx RetryInterceptor id and timer bookkeeping), timers (long timers split like the
 * extension), sub-orchestrations, continue-as-new. Time comes from a Clock: virtual (moves only when told) or wall.
 */
import { randomUUID } from "node:crypto";
import { FunctionsHost, InvocationError, type RpcTypedData } from "../functions-host/index.js";
import { ManualClock, WallClock, type Clock } from "../support/index.js";
import {
  ActionType,
  EVENT_TYPE_NAMES,
  EventType,
  OUT_OF_PROC_MARKER,
  describeLeaf,
  flattenActions,
  parseTimeSpan,
  sameLeaf,
  type FailureDetailsWire,
  type HistoryEvent,
  type LeafAction,
  type OrchestratorStateWire,
  type RetryOptionsWire,
} from "./wire.js";

export type RuntimeStatus = "Pending" | "Running" | "Completed" | "Failed" | "Terminated";

const TERMINAL: ReadonlySet<RuntimeStatus> = new Set(["Completed", "Failed", "Terminated"]);
export const isTerminal = (status: RuntimeStatus): boolean => TERMINAL.has(status);

export interface DurableSimulatorOptions {
  host?: FunctionsHost;
  /** "virtual": time and work move only through runUntilIdle/advance/runToCompletion. "realtime": work runs by itself and timers fire on the clock. */
  mode?: "virtual" | "realtime";
  /** Defaults to a ManualClock (virtual) or the wall clock (realtime). */
  clock?: Clock;
  /** The `upperSchemaVersionNew` the extension advertises: 1 = V2, 2 = V3 (long timers), 3 = V4. */
  schemaVersion?: 1 | 2 | 3;
  /** Send FailureDetails on TaskFailed like current extensions; false emulates older ones (Reason/Details only). */
  failureDetails?: boolean;
  /** Fails an instance that needs more episodes than this: a runaway loop in a test, not a real limit. */
  maxEpisodesPerInstance?: number;
  /** Activities run at once in realtime mode (virtual mode runs them one at a time, in order). */
  activityConcurrency?: number;
  maximumShortTimerDuration?: string;
  longRunningTimerIntervalDuration?: string;
  taskHubName?: string;
}

export interface StartOptions {
  instanceId?: string;
  input?: unknown;
  /** The input already as JSON text (what the HTTP client API sends). */
  inputJson?: string;
}

export interface ActivityCall {
  instanceId: string;
  executionId: string;
  name: string;
  taskId: number;
  attempt: number;
  input: unknown;
  scheduledAt: number;
  startedAt: number;
  finishedAt: number;
  outcome: "completed" | "failed";
  result?: unknown;
  error?: string;
}

export interface InstanceStatus {
  name: string;
  instanceId: string;
  runtimeStatus: RuntimeStatus;
  input: unknown;
  customStatus: unknown;
  output: unknown;
  createdTime: string;
  lastUpdatedTime: string;
  historyEvents?: Record<string, unknown>[];
}

export class InstanceExistsError extends Error {
  constructor(id: string, status: RuntimeStatus) {
    super(`An Orchestration instance with the status ${status} already exists: ${id}`);
    this.name = "InstanceExistsError";
  }
}

export class OrchestratorNotFoundError extends Error {
  constructor(name: string) {
    super(`The function '${name}' doesn't exist, is disabled, or is not an orchestrator function.`);
    this.name = "OrchestratorNotFoundError";
  }
}

interface RetryState {
  functionName: string;
  wireInput: string | undefined;
  options: RetryOptionsWire;
  attempt: number;
}

interface Instance {
  id: string;
  name: string;
  executionId: string;
  /** Orchestration input as JSON text. */
  input: string | undefined;
  status: RuntimeStatus;
  createdTime: number;
  lastUpdatedTime: number;
  history: HistoryEvent[];
  /** How many history events are played, and their JSON (joined by commas): an event never changes once played. */
  played: number;
  playedJson: string;
  leaves: LeafAction[];
  leafIds: (number | undefined)[];
  nextId: number;
  output: unknown;
  customStatus: unknown;
  parent?: { instanceId: string; executionId: string; taskId: number };
  /** Current attempt's task id → retry state. */
  retries: Map<number, RetryState>;
  /** Retry back-off timer id → retry state. */
  retryTimers: Map<number, RetryState>;
  /** Long-timer chunk id → final fire time. */
  longTimers: Map<number, number>;
  episodes: number;
}

interface Message {
  instanceId: string;
  /** Absent for messages addressed to whatever execution is current (raised events, terminate). */
  executionId?: string;
  event: HistoryEvent;
  terminate?: string;
}

interface ActivityWork {
  instanceId: string;
  executionId: string;
  name: string;
  taskId: number;
  attempt: number;
  wireInput: string | undefined;
  scheduledAt: number;
}

interface PendingTimer {
  instanceId: string;
  executionId: string;
  timerId: number;
  fireAt: number;
  handle?: NodeJS.Timeout;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const toWireInput = (input: unknown): string | undefined => (input === undefined ? undefined : typeof input === "string" ? input : JSON.stringify(input));
const parseJson = (text: string | undefined | null): unknown => (text === undefined || text === null || text === "" ? null : JSON.parse(text));
// setTimeout holds at most 2^31-1 ms; longer waits re-arm.
const MAX_TIMEOUT_MS = 2_147_483_647;

export class DurableSimulator {
  readonly host: FunctionsHost;
  readonly clock: Clock;
  readonly mode: "virtual" | "realtime";
  readonly taskHubName: string;
  readonly activityLog: ActivityCall[] = [];
  /** Messages that arrived for a finished or replaced execution (DTFx discards them too). */
  readonly droppedMessages: Message[] = [];
  /** Internal failures of the realtime pump; surfaced by waitFor* so they are never silent. */
  readonly errors: unknown[] = [];

  private readonly instances = new Map<string, Instance>();
  private readonly messages: Message[] = [];
  private readonly activities: ActivityWork[] = [];
  private timers: PendingTimer[] = [];
  private readonly listeners = new Set<(instanceId: string) => void>();
  private readonly schemaVersion: number;
  private readonly failureDetails: boolean;
  private readonly maxEpisodes: number;
  private readonly concurrency: number;
  private readonly maxShortMs: number;
  private readonly longIntervalMs: number;
  private readonly maxShortText: string;
  private readonly longIntervalText: string;
  private pumping = false;
  private inflight = 0;
  private closed = false;

  constructor(options: DurableSimulatorOptions = {}) {
    this.host = options.host ?? new FunctionsHost();
    this.mode = options.mode ?? "virtual";
    this.clock = options.clock ?? (this.mode === "virtual" ? new ManualClock() : new WallClock());
    this.schemaVersion = options.schemaVersion ?? 2;
    this.failureDetails = options.failureDetails ?? true;
    this.maxEpisodes = options.maxEpisodesPerInstance ?? 1_000;
    this.concurrency = options.activityConcurrency ?? 8;
    this.maxShortText = options.maximumShortTimerDuration ?? "6.00:00:00";
    this.longIntervalText = options.longRunningTimerIntervalDuration ?? "3.00:00:00";
    this.maxShortMs = parseTimeSpan(this.maxShortText);
    this.longIntervalMs = parseTimeSpan(this.longIntervalText);
    this.taskHubName = options.taskHubName ?? "FlexNodeHub";
  }

  // ---------------------------------------------------------------- client operations

  startNew(name: string, options: StartOptions = {}): string {
    const fn = this.host.registry.functions.get(name);
    if (!fn || fn.trigger.type !== "orchestrationTrigger") throw new OrchestratorNotFoundError(name);
    const id = options.instanceId ?? randomUUID().replace(/-/g, "");
    const existing = this.instances.get(id);
    if (existing && !isTerminal(existing.status)) throw new InstanceExistsError(id, existing.status);
    if (existing) this.dropTimers(id);
    const input = options.inputJson !== undefined ? options.inputJson || undefined : options.input === undefined ? undefined : JSON.stringify(options.input);
    this.createInstance(id, name, input);
    this.notify(id);
    return id;
  }

  /** "accepted" (202), "gone" (410: the instance is finished) or "notFound" (404), as the extension answers. */
  raiseEvent(instanceId: string, eventName: string, data?: unknown): "accepted" | "gone" | "notFound" {
    const inst = this.instances.get(instanceId);
    if (!inst) return "notFound";
    if (isTerminal(inst.status)) return "gone";
    this.enqueue({ instanceId, event: this.event(EventType.EventRaised, { Name: eventName, Input: data === undefined ? null : JSON.stringify(data) }) });
    return "accepted";
  }

  terminate(instanceId: string, reason = ""): "accepted" | "gone" | "notFound" {
    const inst = this.instances.get(instanceId);
    if (!inst) return "notFound";
    if (isTerminal(inst.status)) return "gone";
    this.enqueue({ instanceId, event: this.event(EventType.ExecutionTerminated, { Input: JSON.stringify(reason) }), terminate: reason });
    return "accepted";
  }

  /** Deletes a finished instance's state and history; running instances are left alone. Returns instances deleted. */
  purge(instanceId: string): number {
    const inst = this.instances.get(instanceId);
    if (!inst || !isTerminal(inst.status)) return 0;
    this.instances.delete(instanceId);
    this.dropTimers(instanceId);
    return 1;
  }

  /**
   * Purge by filter, as the extension's `DELETE /instances/?createdTimeFrom&createdTimeTo&runtimeStatus`: finished
   * instances only (a running one is never purged, whatever the filter says). Returns instances deleted.
   */
  purgeWhere(filter: { runtimeStatus?: RuntimeStatus[]; createdTimeFrom?: number; createdTimeTo?: number }): number {
    let deleted = 0;
    for (const s of this.listStatus(filter)) deleted += this.purge(s.instanceId);
    return deleted;
  }

  getStatus(instanceId: string, options: { showHistory?: boolean; showHistoryOutput?: boolean; showInput?: boolean } = {}): InstanceStatus | undefined {
    const inst = this.instances.get(instanceId);
    if (!inst) return undefined;
    const status: InstanceStatus = {
      name: inst.name,
      instanceId: inst.id,
      runtimeStatus: inst.status,
      input: options.showInput === false ? null : parseJson(inst.input),
      customStatus: inst.customStatus ?? null,
      output: inst.output ?? null,
      createdTime: iso(inst.createdTime),
      lastUpdatedTime: iso(inst.lastUpdatedTime),
    };
    if (options.showHistory) {
      status.historyEvents = inst.history
        .filter((e) => e.EventType !== EventType.OrchestratorStarted && e.EventType !== EventType.OrchestratorCompleted)
        .map((e) => {
          const { EventType: type, IsPlayed: _p, Result, ...rest } = e;
          return { EventType: EVENT_TYPE_NAMES[type] ?? type, ...rest, ...(options.showHistoryOutput && Result !== undefined ? { Result } : {}) };
        });
    }
    return status;
  }

  listStatus(filter: { runtimeStatus?: RuntimeStatus[]; createdTimeFrom?: number; createdTimeTo?: number } = {}): InstanceStatus[] {
    return [...this.instances.values()]
      .filter((i) => !filter.runtimeStatus?.length || filter.runtimeStatus.includes(i.status))
      .filter((i) => filter.createdTimeFrom === undefined || i.createdTime >= filter.createdTimeFrom)
      .filter((i) => filter.createdTimeTo === undefined || i.createdTime <= filter.createdTimeTo)
      .map((i) => this.getStatus(i.id)!);
  }

  /** The current execution's raw wire history (what the orchestrator receives). */
  history(instanceId: string): readonly HistoryEvent[] {
    return this.mustGet(instanceId).history;
  }

  instanceIds(): string[] {
    return [...this.instances.keys()];
  }

  /** Called with an instance id whenever that instance's state may have changed. */
  onChange(listener: (instanceId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- scheduling (virtual mode)

  /** Processes every message, activity and due timer until nothing is left at the current time. */
  async runUntilIdle(options: { maxSteps?: number } = {}): Promise<void> {
    this.requireMode("virtual", "runUntilIdle");
    const maxSteps = options.maxSteps ?? 100_000;
    for (let step = 0; step < maxSteps; step++) {
      const message = this.messages.shift();
      if (message) {
        await this.process(message);
        continue;
      }
      const work = this.activities.shift();
      if (work) {
        await this.runActivity(work);
        continue;
      }
      const due = this.earliestTimer();
      if (due && due.fireAt <= this.clock.now()) {
        this.fire(due);
        continue;
      }
      return;
    }
    throw new Error(`the simulator did not go idle within ${maxSteps} steps`);
  }

  /** Moves virtual time forward by `ms`, firing every timer due on the way in order. */
  async advance(ms: number): Promise<void> {
    const clock = this.manualClock();
    const target = clock.now() + ms;
    await this.runUntilIdle();
    for (;;) {
      const next = this.earliestTimer();
      if (!next || next.fireAt > target) break;
      clock.set(Math.max(clock.now(), next.fireAt));
      await this.runUntilIdle();
    }
    clock.set(target);
    await this.runUntilIdle();
  }

  /** Runs until the instance is terminal, jumping virtual time to each next timer. */
  async runToCompletion(instanceId: string, options: { maxVirtualMs?: number } = {}): Promise<InstanceStatus> {
    const clock = this.manualClock();
    const deadline = clock.now() + (options.maxVirtualMs ?? 365 * 24 * 3600_000);
    for (;;) {
      await this.runUntilIdle();
      const inst = this.mustGet(instanceId);
      if (isTerminal(inst.status)) return this.getStatus(instanceId)!;
      const next = this.earliestTimer();
      if (!next) throw new Error(`instance ${instanceId} is ${inst.status} and waits for an event; no timer is pending`);
      if (next.fireAt > deadline) throw new Error(`instance ${instanceId} did not finish within the virtual time allowed`);
      clock.set(Math.max(clock.now(), next.fireAt));
    }
  }

  /** True while messages or activities are queued (timers not counted): there is work before time must move. */
  hasPendingWork(): boolean {
    return this.messages.length > 0 || this.activities.length > 0 || this.inflight > 0;
  }

  /** When the next timer fires (virtual or wall time), if any. */
  nextTimerAt(): number | undefined {
    return this.earliestTimer()?.fireAt;
  }

  // ---------------------------------------------------------------- realtime mode

  /** Resolves when the instance reaches one of `statuses` (default: any terminal status). */
  waitFor(instanceId: string, options: { statuses?: RuntimeStatus[]; timeoutMs?: number } = {}): Promise<InstanceStatus> {
    const wanted = options.statuses ?? ["Completed", "Failed", "Terminated"];
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.errors.length > 0) {
          finish();
          reject(this.errors[0] instanceof Error ? this.errors[0] : new Error(String(this.errors[0])));
          return true;
        }
        const status = this.getStatus(instanceId);
        if (status && wanted.includes(status.runtimeStatus)) {
          finish();
          resolve(status);
          return true;
        }
        return false;
      };
      const unsubscribe = this.onChange((id) => {
        if (id === instanceId) check();
      });
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `instance ${instanceId} did not reach ${wanted.join("|")} within ${timeoutMs} ms (now ${this.getStatus(instanceId)?.runtimeStatus ?? "absent"})`,
          ),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
      };
      check();
    });
  }

  /** Stops timers and the pump; the simulator accepts no further work. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) if (t.handle) clearTimeout(t.handle);
    this.timers = [];
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- internals

  private createInstance(id: string, name: string, input: string | undefined, parent?: Instance["parent"]): Instance {
    const now = this.clock.now();
    const inst: Instance = {
      id,
      name,
      executionId: randomUUID().replace(/-/g, ""),
      input,
      status: "Pending",
      createdTime: now,
      lastUpdatedTime: now,
      history: [],
      played: 0,
      playedJson: "",
      leaves: [],
      leafIds: [],
      nextId: 0,
      output: undefined,
      customStatus: undefined,
      parent,
      retries: new Map(),
      retryTimers: new Map(),
      longTimers: new Map(),
      episodes: 0,
    };
    this.instances.set(id, inst);
    this.enqueueStart(inst);
    return inst;
  }

  private enqueueStart(inst: Instance): void {
    this.enqueue({
      instanceId: inst.id,
      executionId: inst.executionId,
      event: this.event(EventType.ExecutionStarted, {
        Name: inst.name,
        Input: inst.input ?? null,
        Version: "",
        OrchestrationInstance: { InstanceId: inst.id, ExecutionId: inst.executionId },
        ParentInstance: inst.parent
          ? {
              Name: this.instances.get(inst.parent.instanceId)?.name ?? null,
              TaskScheduleId: inst.parent.taskId,
              OrchestrationInstance: { InstanceId: inst.parent.instanceId, ExecutionId: inst.parent.executionId },
            }
          : null,
        Tags: null,
      }),
    });
  }

  private event(type: number, fields: Record<string, unknown> = {}, eventId = -1): HistoryEvent {
    return { EventType: type, EventId: eventId, IsPlayed: false, Timestamp: iso(this.clock.now()), ...fields };
  }

  private enqueue(message: Message): void {
    if (this.closed) return;
    this.messages.push(message);
    this.kick();
  }

  private async process(message: Message): Promise<void> {
    const inst = this.instances.get(message.instanceId);
    if (!inst || isTerminal(inst.status) || (message.executionId !== undefined && message.executionId !== inst.executionId)) {
      this.droppedMessages.push(message);
      return;
    }
    if (message.terminate !== undefined) {
      this.finish(inst, "Terminated", message.terminate, message.event);
      return;
    }
    const now = this.clock.now();
    const followUps: HistoryEvent[] = [];
    this.beforeDelivery(inst, message.event, now, followUps);
    this.markPlayed(inst);
    inst.history.push(this.event(EventType.OrchestratorStarted), { ...message.event, IsPlayed: false });
    if (inst.status === "Pending") inst.status = "Running";
    await this.episode(inst, now, followUps);
  }

  /**
   * Id bookkeeping the extension does while it delivers an event, before the SDK resumes user code: a retried
   * activity's failure allocates its back-off timer, that timer firing allocates the next attempt, and a long timer's
   * chunk firing allocates the next chunk. The SDK allocates the same ids while processing the same event.
   */
  private beforeDelivery(inst: Instance, event: HistoryEvent, now: number, followUps: HistoryEvent[]): void {
    if (event.EventType === EventType.TaskFailed) {
      const taskId = event.TaskScheduledId as number;
      const retry = inst.retries.get(taskId);
      if (!retry) return;
      inst.retries.delete(taskId);
      const { firstRetryIntervalInMilliseconds: first, backoffCoefficient = 1, maxRetryIntervalInMilliseconds } = retry.options;
      let delay = first * Math.pow(backoffCoefficient, retry.attempt - 1);
      if (maxRetryIntervalInMilliseconds !== undefined && maxRetryIntervalInMilliseconds > 0) delay = Math.min(delay, maxRetryIntervalInMilliseconds);
      const timerId = inst.nextId++;
      inst.retryTimers.set(timerId, retry);
      followUps.push(this.event(EventType.TimerCreated, { FireAt: iso(now + delay) }, timerId));
      this.schedule(inst, timerId, now + delay);
      return;
    }
    if (event.EventType !== EventType.TimerFired) return;
    const timerId = event.TimerId as number;
    const retry = inst.retryTimers.get(timerId);
    if (retry) {
      inst.retryTimers.delete(timerId);
      if (retry.attempt >= retry.options.maxNumberOfAttempts) return; // the SDK now throws the last failure
      retry.attempt++;
      const taskId = inst.nextId++;
      inst.retries.set(taskId, retry);
      followUps.push(this.event(EventType.TaskScheduled, { Name: retry.functionName, Input: retry.wireInput ?? null }, taskId));
      this.activities.push({
        instanceId: inst.id,
        executionId: inst.executionId,
        name: retry.functionName,
        taskId,
        attempt: retry.attempt,
        wireInput: retry.wireInput,
        scheduledAt: now,
      });
      return;
    }
    const finalAt = inst.longTimers.get(timerId);
    if (finalAt !== undefined) {
      inst.longTimers.delete(timerId);
      if (finalAt <= now) return;
      const chunkId = inst.nextId++;
      const fireAt = finalAt - now > this.maxShortMs ? now + this.longIntervalMs : finalAt;
      inst.longTimers.set(chunkId, finalAt);
      followUps.push(this.event(EventType.TimerCreated, { FireAt: iso(fireAt) }, chunkId));
      this.schedule(inst, chunkId, fireAt);
    }
  }

  /** Everything in the history so far is played from now on; its JSON is kept, since it is resent every episode. */
  private markPlayed(inst: Instance): void {
    for (; inst.played < inst.history.length; inst.played++) {
      const e = inst.history[inst.played]!;
      e.IsPlayed = true;
      inst.playedJson += (inst.played > 0 ? "," : "") + JSON.stringify(e);
    }
  }

  /** `JSON.stringify(wire)` with `history` first, the played events' JSON reused. */
  private wireJson(inst: Instance, wire: Record<string, unknown>): string {
    let history = inst.playedJson;
    for (let i = inst.played; i < inst.history.length; i++) history += (i > 0 ? "," : "") + JSON.stringify(inst.history[i]);
    return `{"history":[${history}],${JSON.stringify(wire).slice(1)}`;
  }

  private async episode(inst: Instance, now: number, followUps: HistoryEvent[]): Promise<void> {
    inst.episodes++;
    inst.lastUpdatedTime = now;
    const wire = {
      input: parseJson(inst.input) ?? undefined,
      instanceId: inst.id,
      isReplaying: false,
      parentInstanceId: inst.parent?.instanceId ?? null,
      upperSchemaVersion: 1,
      upperSchemaVersionNew: this.schemaVersion,
      longRunningTimerIntervalDuration: this.longIntervalText,
      maximumShortTimerDuration: this.maxShortText,
      defaultHttpAsyncRequestSleepTimeMillseconds: 30_000,
    };
    let state: OrchestratorStateWire | undefined;
    let thrown: string | undefined;
    try {
      const result = await this.host.invoke(inst.name, { string: this.wireJson(inst, wire) });
      state = result.returnValue as OrchestratorStateWire;
    } catch (error) {
      if (!(error instanceof InvocationError)) throw error;
      const text = error.cause instanceof Error ? error.cause.message : String(error.cause);
      const at = text.indexOf(OUT_OF_PROC_MARKER);
      if (at >= 0) state = JSON.parse(text.slice(at + OUT_OF_PROC_MARKER.length)) as OrchestratorStateWire;
      thrown = state?.error ?? text;
    }
    const statusRefusal = state?.customStatus !== undefined ? customStatusRefusal(state.customStatus) : undefined;
    if (statusRefusal) {
      // The extension serialises the status before it keeps anything of the episode, and fails the instance outside
      // the orchestrator's code: no catch in the orchestration runs.
      inst.history.push(...followUps, this.event(EventType.OrchestratorCompleted));
      this.finish(inst, "Failed", statusRefusal);
      return;
    }
    if (state?.customStatus !== undefined) inst.customStatus = state.customStatus;

    const leaves = flattenActions(state?.actions ?? []);
    const divergence = this.checkDeterminism(inst, leaves);
    if (divergence) {
      inst.history.push(...followUps, this.event(EventType.OrchestratorCompleted));
      this.finish(inst, "Failed", divergence);
      return;
    }
    const scheduled: HistoryEvent[] = [];
    for (let i = 0; i < inst.leaves.length; i++) {
      // A timer cancelled since it was scheduled must not fire into the orchestration.
      const id = inst.leafIds[i];
      if (leaves[i]?.isCanceled && !inst.leaves[i]!.isCanceled && id !== undefined) this.cancelTimer(inst.id, id);
      inst.leaves[i] = leaves[i]!;
    }
    let unsupported: string | undefined;
    for (const leaf of leaves.slice(inst.leaves.length)) {
      const id = this.scheduleLeaf(inst, leaf, now, scheduled);
      if (id === null) {
        unsupported ??= `${describeLeaf(leaf)} is not simulated`;
        continue;
      }
      inst.leaves.push(leaf);
      inst.leafIds.push(id);
    }
    inst.history.push(...followUps, ...scheduled, this.event(EventType.OrchestratorCompleted));

    if (thrown !== undefined) return this.finish(inst, "Failed", thrown, undefined, state?.failureDetails);
    if (unsupported) return this.finish(inst, "Failed", unsupported);
    if (state?.isDone) {
      const next = leaves.find((l) => l.actionType === ActionType.ContinueAsNew);
      if (next) return this.continueAsNew(inst, toWireInput(next.input));
      return this.finish(inst, "Completed", state.output);
    }
    if (inst.episodes >= this.maxEpisodes) return this.finish(inst, "Failed", `exceeded ${this.maxEpisodes} episodes; is the orchestrator looping?`);
    this.notify(inst.id);
  }

  private checkDeterminism(inst: Instance, leaves: LeafAction[]): string | undefined {
    for (let i = 0; i < inst.leaves.length; i++) {
      const before = inst.leaves[i]!;
      const now = leaves[i];
      if (now && sameLeaf(now, before)) continue;
      const id = inst.leafIds[i];
      return (
        `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled ${describeLeaf(before)}` +
        `${id !== undefined ? ` with sequence ID ${id}` : ""}, but the current replay execution ` +
        (now ? `scheduled ${describeLeaf(now)} in its place.` : "hasn't (yet?) scheduled this task.") +
        " Was a change made to the orchestrator code after this instance had already started running?"
      );
    }
    return undefined;
  }

  /** Allocates the id for a new leaf and starts its work; null when the action kind is not simulated. */
  private scheduleLeaf(inst: Instance, leaf: LeafAction, now: number, scheduled: HistoryEvent[]): number | undefined | null {
    switch (leaf.actionType) {
      case ActionType.CallActivity:
      case ActionType.CallActivityWithRetry: {
        const taskId = inst.nextId++;
        const wireInput = toWireInput(leaf.input);
        const name = leaf.functionName!;
        scheduled.push(this.event(EventType.TaskScheduled, { Name: name, Input: wireInput ?? null }, taskId));
        if (leaf.actionType === ActionType.CallActivityWithRetry) {
          inst.retries.set(taskId, { functionName: name, wireInput, options: leaf.retryOptions!, attempt: 1 });
        }
        this.activities.push({ instanceId: inst.id, executionId: inst.executionId, name, taskId, attempt: 1, wireInput, scheduledAt: now });
        return taskId;
      }
      case ActionType.CreateTimer: {
        const taskId = inst.nextId++;
        const finalAt = Date.parse(leaf.fireAt!);
        let fireAt = finalAt;
        if (this.schemaVersion >= 2 && finalAt - now > this.maxShortMs) {
          fireAt = now + this.longIntervalMs;
          inst.longTimers.set(taskId, finalAt);
        }
        scheduled.push(this.event(EventType.TimerCreated, { FireAt: iso(fireAt) }, taskId));
        if (!leaf.isCanceled) this.schedule(inst, taskId, fireAt);
        return taskId;
      }
      case ActionType.CallSubOrchestrator: {
        const taskId = inst.nextId++;
        const childId = leaf.instanceId ?? `${inst.id}:${taskId}`;
        const input = leaf.input === undefined ? undefined : JSON.stringify(leaf.input);
        scheduled.push(this.event(EventType.SubOrchestrationInstanceCreated, { Name: leaf.functionName, InstanceId: childId, Input: input ?? null }, taskId));
        this.startChild(inst, leaf.functionName!, childId, input, taskId);
        return taskId;
      }
      case ActionType.WaitForExternalEvent:
      case ActionType.ContinueAsNew:
        return undefined;
      default:
        return null;
    }
  }

  private startChild(parent: Instance, name: string, childId: string, input: string | undefined, taskId: number): void {
    const fn = this.host.registry.functions.get(name);
    const existing = this.instances.get(childId);
    const refusal =
      !fn || fn.trigger.type !== "orchestrationTrigger"
        ? new OrchestratorNotFoundError(name).message
        : existing && !isTerminal(existing.status)
          ? new InstanceExistsError(childId, existing.status).message
          : undefined;
    if (refusal) {
      this.enqueue({
        instanceId: parent.id,
        executionId: parent.executionId,
        event: this.event(EventType.SubOrchestrationInstanceFailed, {
          TaskScheduledId: taskId,
          Reason: refusal,
          Details: null,
          FailureDetails: this.failureDetails ? { ErrorType: "OrchestrationFailureException", ErrorMessage: refusal, IsNonRetriable: true } : undefined,
        }),
      });
      return;
    }
    if (existing) this.dropTimers(childId);
    this.createInstance(childId, name, input, { instanceId: parent.id, executionId: parent.executionId, taskId });
  }

  private continueAsNew(inst: Instance, input: string | undefined): void {
    this.dropTimers(inst.id);
    Object.assign(inst, {
      executionId: randomUUID().replace(/-/g, ""),
      input,
      status: "Running" as RuntimeStatus,
      history: [],
      played: 0,
      playedJson: "",
      leaves: [],
      leafIds: [],
      nextId: 0,
      output: undefined,
      retries: new Map(),
      retryTimers: new Map(),
      longTimers: new Map(),
      episodes: 0,
    });
    this.enqueueStart(inst);
    this.notify(inst.id);
  }

  private finish(
    inst: Instance,
    status: "Completed" | "Failed" | "Terminated",
    value: unknown,
    terminatedEvent?: HistoryEvent,
    failureDetails?: unknown,
  ): void {
    inst.status = status;
    inst.lastUpdatedTime = this.clock.now();
    this.dropTimers(inst.id);
    const parent = inst.parent && this.instances.get(inst.parent.instanceId);
    if (status === "Completed") {
      inst.output = value;
      inst.history.push(
        this.event(EventType.ExecutionCompleted, { OrchestrationStatus: "Completed", Result: value === undefined ? null : JSON.stringify(value) }),
      );
      if (parent && inst.parent) {
        this.enqueue({
          instanceId: parent.id,
          executionId: inst.parent.executionId,
          event: this.event(EventType.SubOrchestrationInstanceCompleted, {
            TaskScheduledId: inst.parent.taskId,
            Result: value === undefined ? null : JSON.stringify(value),
          }),
        });
      }
    } else if (status === "Failed") {
      const message = `Orchestrator function '${inst.name}' failed: ${String(value)}`;
      inst.output = message;
      inst.history.push(this.event(EventType.ExecutionFailed, { OrchestrationStatus: "Failed", Reason: message, FailureDetails: failureDetails ?? null }));
      if (parent && inst.parent) {
        const details: FailureDetailsWire = { ErrorType: "OrchestrationFailureException", ErrorMessage: message, IsNonRetriable: false };
        this.enqueue({
          instanceId: parent.id,
          executionId: inst.parent.executionId,
          event: this.event(EventType.SubOrchestrationInstanceFailed, {
            TaskScheduledId: inst.parent.taskId,
            Reason: message,
            Details: String(value),
            ...(this.failureDetails ? { FailureDetails: details } : {}),
          }),
        });
      }
    } else {
      inst.output = value;
      inst.history.push({ ...(terminatedEvent ?? this.event(EventType.ExecutionTerminated)), IsPlayed: false });
    }
    this.notify(inst.id);
  }

  private async runActivity(work: ActivityWork): Promise<void> {
    const startedAt = this.clock.now();
    const fn = this.host.registry.functions.get(work.name);
    const input = work.wireInput === undefined ? undefined : parseJson(work.wireInput);
    let event: HistoryEvent;
    let call: Pick<ActivityCall, "outcome" | "result" | "error">;
    if (!fn || fn.trigger.type !== "activityTrigger") {
      const reason = `The function '${work.name}' doesn't exist, is disabled, or is not an activity or orchestrator function.`;
      event = this.taskFailed(work, { name: "FunctionFailedException", message: reason }, reason);
      call = { outcome: "failed", error: reason };
    } else {
      try {
        const result = await this.host.invoke(work.name, work.wireInput === undefined ? {} : { string: work.wireInput });
        const resultJson = resultToJson(result.response.returnValue);
        event = this.event(EventType.TaskCompleted, { TaskScheduledId: work.taskId, Result: resultJson });
        call = { outcome: "completed", result: parseJson(resultJson) };
      } catch (error) {
        if (!(error instanceof InvocationError)) throw error;
        const cause = error.cause instanceof Error ? error.cause : new Error(String(error.cause));
        event = this.taskFailed(work, cause, `Activity function '${work.name}' failed: ${cause.message}`);
        call = { outcome: "failed", error: cause.message };
      }
    }
    this.activityLog.push({
      instanceId: work.instanceId,
      executionId: work.executionId,
      name: work.name,
      taskId: work.taskId,
      attempt: work.attempt,
      input,
      scheduledAt: work.scheduledAt,
      startedAt,
      finishedAt: this.clock.now(),
      ...call,
    });
    this.enqueue({ instanceId: work.instanceId, executionId: work.executionId, event });
  }

  private taskFailed(work: ActivityWork, cause: { name?: string; message: string; stack?: string }, reason: string): HistoryEvent {
    const fields: Record<string, unknown> = { TaskScheduledId: work.taskId, Reason: reason, Details: cause.stack ?? null };
    if (this.failureDetails) fields.FailureDetails = failureDetailsOf(cause);
    return this.event(EventType.TaskFailed, fields);
  }

  private schedule(inst: Instance, timerId: number, fireAt: number): void {
    const timer: PendingTimer = { instanceId: inst.id, executionId: inst.executionId, timerId, fireAt };
    this.timers.push(timer);
    if (this.mode === "realtime") this.arm(timer);
  }

  private arm(timer: PendingTimer): void {
    if (this.closed) return;
    const wait = Math.min(Math.max(0, timer.fireAt - this.clock.now()), MAX_TIMEOUT_MS);
    timer.handle = setTimeout(() => {
      if (timer.fireAt > this.clock.now()) return this.arm(timer);
      this.fire(timer);
    }, wait);
  }

  private fire(timer: PendingTimer): void {
    this.timers = this.timers.filter((t) => t !== timer);
    this.enqueue({
      instanceId: timer.instanceId,
      executionId: timer.executionId,
      event: this.event(EventType.TimerFired, { TimerId: timer.timerId, FireAt: iso(timer.fireAt) }),
    });
  }

  private cancelTimer(instanceId: string, timerId: number): void {
    for (const t of this.timers) if (t.instanceId === instanceId && t.timerId === timerId && t.handle) clearTimeout(t.handle);
    this.timers = this.timers.filter((t) => !(t.instanceId === instanceId && t.timerId === timerId));
  }

  private dropTimers(instanceId: string): void {
    for (const t of this.timers) if (t.instanceId === instanceId && t.handle) clearTimeout(t.handle);
    this.timers = this.timers.filter((t) => t.instanceId !== instanceId);
  }

  private earliestTimer(): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const t of this.timers) if (!best || t.fireAt < best.fireAt) best = t;
    return best;
  }

  private notify(instanceId: string): void {
    for (const l of [...this.listeners]) l(instanceId);
  }

  private mustGet(instanceId: string): Instance {
    const inst = this.instances.get(instanceId);
    if (!inst) throw new Error(`no instance ${instanceId}`);
    return inst;
  }

  private manualClock(): ManualClock {
    this.requireMode("virtual", "advancing time");
    if (!(this.clock instanceof ManualClock)) throw new Error("virtual mode needs a ManualClock to move time");
    return this.clock;
  }

  private requireMode(mode: "virtual" | "realtime", what: string): void {
    if (this.mode !== mode) throw new Error(`${what} is for ${mode} mode; this simulator runs in ${this.mode} mode`);
  }

  /** Realtime mode: runs queued work without being asked, one orchestration episode at a time. */
  private kick(): void {
    if (this.mode !== "realtime" || this.pumping || this.closed) return;
    this.pumping = true;
    setImmediate(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed) {
        const message = this.messages.shift();
        if (message) {
          await this.process(message);
          continue;
        }
        if (this.activities.length > 0 && this.inflight < this.concurrency) {
          const work = this.activities.shift()!;
          this.inflight++;
          void this.runActivity(work)
            .catch((error: unknown) => this.errors.push(error))
            .finally(() => {
              this.inflight--;
              this.kick();
            });
          continue;
        }
        break;
      }
    } catch (error) {
      this.errors.push(error);
      for (const id of this.instances.keys()) this.notify(id);
    } finally {
      this.pumping = false;
    }
    if (!this.closed && (this.messages.length > 0 || (this.activities.length > 0 && this.inflight < this.concurrency))) this.kick();
  }
}

function resultToJson(data: RpcTypedData | null | undefined): string | null {
  if (data === null || data === undefined) return null;
  if (data.json !== undefined) return data.json;
  if (data.string !== undefined) return JSON.stringify(data.string);
  if (data.int !== undefined || data.double !== undefined) return JSON.stringify(data.int ?? data.double);
  if (data.bytes !== undefined) return JSON.stringify(Buffer.from(data.bytes).toString("base64"));
  return null;
}

/** FailureDetails as the extension builds them, including the ExceptionPropertiesProvider's JSON payload. */
function failureDetailsOf(cause: { name?: string; message: string; stack?: string }): FailureDetailsWire {
  try {
    const payload = JSON.parse(cause.message) as { errorType?: unknown; errorMessage?: unknown; properties?: unknown; stackTrace?: unknown };
    if (payload && typeof payload.errorType === "string" && typeof payload.errorMessage === "string") {
      return {
        ErrorType: payload.errorType,
        ErrorMessage: payload.errorMessage,
        StackTrace: typeof payload.stackTrace === "string" ? payload.stackTrace : (cause.stack ?? null),
        IsNonRetriable: false,
        Properties: (payload.properties as Record<string, unknown> | undefined) ?? null,
        InnerFailure: null,
      };
    }
  } catch {
    // not a provider payload: a plain error message
  }
  return {
    ErrorType: cause.name ?? "Error",
    ErrorMessage: cause.message,
    StackTrace: cause.stack ?? null,
    IsNonRetriable: false,
    InnerFailure: null,
    Properties: null,
  };
}

/**
 * The Durable extension's cap on custom status: MessagePayloadDataConverter.Serialize(status, 16) throws once the
 * JSON's UTF-16 size in whole KB exceeds 16 (DurableOrchestrationContext.SetCustomStatus), i.e. from 8,704 characters.
 */
const CUSTOM_STATUS_MAX_KB = 16;
function customStatusRefusal(status: unknown): string | undefined {
  const kb = Math.floor((2 * (JSON.stringify(status) ?? "").length) / 1024);
  if (kb <= CUSTOM_STATUS_MAX_KB) return undefined;
  return `The UTF-16 size of the JSON-serialized payload must not exceed ${CUSTOM_STATUS_MAX_KB} KB. The current payload size is ${kb} KB.`;
}
