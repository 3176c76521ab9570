/**
 * The Durable out-of-proc wire format as the extension sends it to durable-functions 3.x: DTFx history events
 * (Newtonsoft PascalCase) and the action shapes the SDK returns. Numbers match `lib/src/history/HistoryEventType.js`
 * and `lib/src/actions/ActionType.js` of the SDK.
 */
export const EventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventSent: 14,
  EventRaised: 15,
  ContinueAsNew: 16,
} as const;

export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
  LockEntities: 13,
  ReleaseEntities: 14,
} as const;

export const EVENT_TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EventType).map(([k, v]) => [v, k]));

export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
  [field: string]: unknown;
}

export interface FailureDetailsWire {
  ErrorType: string;
  ErrorMessage: string;
  StackTrace?: string | null;
  IsNonRetriable: boolean;
  InnerFailure?: FailureDetailsWire | null;
  Properties?: Record<string, unknown> | null;
}

export interface RetryOptionsWire {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
  retryTimeoutInMilliseconds?: number;
}

/** A leaf action: what one yielded task asks the extension to do. */
export interface LeafAction {
  actionType: number;
  functionName?: string;
  input?: unknown;
  retryOptions?: RetryOptionsWire;
  instanceId?: string;
  fireAt?: string;
  isCanceled?: boolean;
  externalEventName?: string;
  [field: string]: unknown;
}

/** What the orchestrator handler returns (or embeds after `$OutOfProcData$:` when it throws). */
export interface OrchestratorStateWire {
  isDone: boolean;
  actions: unknown[];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  schemaVersion: number;
  failureDetails?: unknown;
}

export const OUT_OF_PROC_MARKER = "$OutOfProcData$:";

/** Leaves in scheduling order: V1 nests one array per yield, V2+ nests WhenAll/WhenAny compound actions. */
export function flattenActions(actions: unknown): LeafAction[] {
  const leaves: LeafAction[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== "object") return;
    const action = node as LeafAction & { compoundActions?: unknown[] };
    if (action.actionType === ActionType.WhenAll || action.actionType === ActionType.WhenAny) return visit(action.compoundActions ?? []);
    leaves.push(action);
  };
  visit(actions);
  return leaves;
}

/**
 * What must stay the same for a leaf on every replay. Stricter than DTFx (which compares name and type): a changed
 * input is just as non-deterministic, and catching it here costs nothing. Cancellation is state, not identity.
 */
export function leafSignature(a: LeafAction): string {
  return JSON.stringify([
    a.actionType,
    a.functionName ?? null,
    a.input ?? null,
    a.externalEventName ?? null,
    a.fireAt ?? null,
    a.instanceId ?? null,
    a.retryOptions ?? null,
  ]);
}

export function describeLeaf(a: LeafAction): string {
  const kind = Object.entries(ActionType).find(([, v]) => v === a.actionType)?.[0] ?? `action ${a.actionType}`;
  const what = a.functionName ?? a.externalEventName ?? a.fireAt ?? "";
  return `${kind}${what ? ` '${what}'` : ""}`;
}

/** Parses .NET TimeSpan text ("d.hh:mm:ss" or "hh:mm:ss") as the extension writes it. */
export function parseTimeSpan(text: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a TimeSpan: ${text}`);
  const [, d = "0", h, min, s, frac = "0"] = m;
  return (((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s)) * 1000 + Math.round(Number(`0.${frac}`) * 1000);
}
