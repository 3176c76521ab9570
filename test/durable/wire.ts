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
  return JSON.stringify(leafIdentity(a));
}

/** `leafSignature(a) === leafSignature(b)`, without serialising both leaves on every episode of every instance. */
export function sameLeaf(a: LeafAction, b: LeafAction): boolean {
  const x = leafIdentity(a);
  const y = leafIdentity(b);
  for (let i = 0; i < x.length; i++) if (!sameJson(x[i], y[i])) return false;
  return true;
}

const leafIdentity = (a: LeafAction): unknown[] => [
  a.actionType,
  a.functionName ?? null,
  a.input ?? null,
  a.externalEventName ?? null,
  a.fireAt ?? null,
  a.instanceId ?? null,
  a.retryOptions ?? null,
];

/** True when JSON.stringify would write the same text for both values (key order included). */
export function sameJson(a: unknown, b: unknown): boolean {
  a = asJsonValue(a);
  b = asJsonValue(b);
  if (a === b) return true;
  // Anything but plain JSON data (dates, boxed values, toJSON) is compared as the text it would be written as.
  if (!isPlainJson(a) || !isPlainJson(b)) return JSON.stringify(a) === JSON.stringify(b);
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    if (a.length !== other.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], other[i])) return false;
    return true;
  }
  const ka = writtenKeys(a as Record<string, unknown>);
  const kb = writtenKeys(b as Record<string, unknown>);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i] || !sameJson((a as Record<string, unknown>)[ka[i]!], (b as Record<string, unknown>)[kb[i]!])) return false;
  }
  return true;
}

/** What JSON.stringify writes for a value inside an array: no undefined, functions or symbols, no NaN/Infinity. */
function asJsonValue(v: unknown): unknown {
  if (v === undefined || typeof v === "function" || typeof v === "symbol") return null;
  if (typeof v === "number" && !Number.isFinite(v)) return null;
  return v;
}

function isPlainJson(v: unknown): boolean {
  if (v === null || typeof v !== "object") return true;
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return false;
  if (Array.isArray(v)) return true;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The keys JSON.stringify writes, in its order: properties whose value it can write. */
function writtenKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((k) => {
    const v = o[k];
    return v !== undefined && typeof v !== "function" && typeof v !== "symbol";
  });
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
