/**
 * What the agent must remember between runs: what enrolment returned (node id, the service's key, the node API), the
 * step it is in the middle of, the signed results it already sent, so a redelivered envelope gets the same result
 * again instead of a second run, and every step attempt it answered until that envelope could no longer verify, so a
 * replayed envelope never runs twice (also after a reset, which forgets the results). Mailbox SAS tokens are deliberately absent: they are short-lived, fetched fresh on
 * every start, and kept in memory only. The file is 0600 and replaced atomically.
 */
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import * as z from "zod";
import { KeyIdSchema, PublicKeySchema } from "../../contract/keys.js";
import { StepResultSchema, type StepResult } from "../../contract/step-result.js";
import { agentFiles } from "./agent-files.js";
import { assertPrivate, ensureOwnerOnlyDir, writePrivateFileAtomic } from "./private-files.js";

/** Results kept for redelivery; older ones are pruned first (and any whose envelope has expired). */
export const MAX_REMEMBERED_RESULTS = 128;

const SentResultSchema = z.strictObject({
  sagaId: z.string(),
  stepId: z.string(),
  attempt: z.int().min(1),
  /** The envelope's expiry plus the largest clock skew: after that a redelivery is refused anyway, so the record can go. */
  keepUntil: z.iso.datetime(),
  result: StepResultSchema,
  /** Set once the results queue accepted it. */
  sentAt: z.iso.datetime().optional(),
});
export type SentResult = z.infer<typeof SentResultSchema>;

/** A step attempt answered, kept until `keepUntil` (its envelope's expiry plus the largest skew) whatever else is pruned. */
const AnsweredSchema = z.strictObject({ sagaId: z.string(), stepId: z.string(), attempt: z.int().min(1), keepUntil: z.iso.datetime() });
export type Answered = z.infer<typeof AnsweredSchema>;

export const AgentStateSchema = z.strictObject({
  version: z.literal(1),
  nodeId: z.string().min(1),
  pool: z.string().min(1),
  keyId: KeyIdSchema,
  serviceUrl: z.url(),
  service: z.strictObject({ publicKey: PublicKeySchema, keyId: KeyIdSchema }),
  nodeApi: z.strictObject({ statusPath: z.string().startsWith("/"), mailboxCredentialsPath: z.string().startsWith("/") }),
  poll: z.strictObject({ intervalSeconds: z.int().min(1).max(3600) }),
  /** Last status the service reported. */
  status: z.string(),
  approval: z.string().optional(),
  enrolledAt: z.iso.datetime(),
  /** Digest of the facts the service last recorded (facts-report.ts); absent, the next start reports them. */
  factsDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** Where the mailbox is and until when its tokens last; the tokens themselves are never written. */
  mailbox: z
    .strictObject({ namespace: z.string(), queue: z.string(), resultsQueue: z.string(), expiresAt: z.iso.datetime(), refreshAfter: z.iso.datetime() })
    .optional(),
  current: z.strictObject({ sagaId: z.string(), stepId: z.string(), attempt: z.int().min(1), kind: z.string(), startedAt: z.iso.datetime() }).optional(),
  results: z.array(SentResultSchema).default([]),
  /** Replay protection: pruned by expiry only (not by count, and not by a reset). */
  answered: z.array(AnsweredSchema).default([]),
});
export type AgentState = z.infer<typeof AgentStateSchema>;
/** What may be saved: lists with defaults may be left out. */
export type AgentStateInput = z.input<typeof AgentStateSchema>;

export class StateError extends Error {
  readonly code = "state_unreadable";
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
    this.name = "StateError";
  }
}

export const resultKey = (r: { sagaId: string; stepId: string; attempt: number }): string => `${r.sagaId}\u0000${r.stepId}\u0000${r.attempt}`;

/** Reads and writes state.json; writes are serialised so concurrent updates never lose one another. */
export class AgentStateStore {
  readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly root: string) {
    this.path = agentFiles(root).stateFile;
  }

  /** undefined before the first enrolment. */
  async load(): Promise<AgentState | undefined> {
    let text: string;
    try {
      await assertPrivate(this.path, "file");
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new StateError(this.path, "is not JSON; move it away and enrol again", { cause });
    }
    const parsed = AgentStateSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new StateError(this.path, `${issue.path.join(".") || "(document)"}: ${issue.message}; move it away and enrol again`);
    }
    return parsed.data;
  }

  async require(): Promise<AgentState> {
    const state = await this.load();
    if (!state) throw new NotEnrolledError();
    return state;
  }

  async save(state: AgentStateInput): Promise<void> {
    await this.serialise(() => this.write(state));
  }

  /** Read-modify-write under the store's lock. */
  async update(change: (state: AgentState) => AgentState): Promise<AgentState> {
    return this.serialise(async () => {
      const next = change(await this.require());
      await this.write(next);
      return next;
    });
  }

  private async write(state: AgentStateInput): Promise<void> {
    const valid = AgentStateSchema.parse(state);
    // The file is 0600 in the agent's state directory, which is 0700 (shared with the manifest and the identity directory).
    await ensureOwnerOnlyDir(dirname(this.path));
    await writePrivateFileAtomic(this.path, `${JSON.stringify(valid, null, 2)}\n`);
  }

  private serialise<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

export class NotEnrolledError extends Error {
  readonly code = "not_enrolled";
  constructor() {
    super("this node is not enrolled yet: run `flexnode-agent enrol --url <enrolment URL>` first");
    this.name = "NotEnrolledError";
  }
}

/** The result already produced for this step attempt, if its envelope is still valid. */
export function rememberedResult(state: AgentState, key: { sagaId: string; stepId: string; attempt: number }, now: Date): SentResult | undefined {
  const wanted = resultKey(key);
  return state.results.find((r) => resultKey(r) === wanted && Date.parse(r.keepUntil) > now.getTime());
}

/** Whether this step attempt was answered before (its result may since have been forgotten, e.g. by a reset). */
export function wasAnswered(state: AgentState, key: { sagaId: string; stepId: string; attempt: number }, now: Date): boolean {
  const wanted = resultKey(key);
  return state.answered.some((a) => resultKey(a) === wanted && Date.parse(a.keepUntil) > now.getTime());
}

/** Adds (or replaces) a result and prunes expired and surplus ones; the attempt is remembered as answered until its expiry. */
export function withResult(state: AgentState, entry: SentResult, now: Date): AgentState {
  const key = resultKey(entry);
  const live = (r: { keepUntil: string }) => Date.parse(r.keepUntil) > now.getTime();
  const kept = state.results.filter((r) => resultKey(r) !== key && live(r));
  const answered = state.answered.filter((a) => resultKey(a) !== key && live(a));
  const { sagaId, stepId, attempt, keepUntil } = entry;
  return { ...state, results: [...kept, entry].slice(-MAX_REMEMBERED_RESULTS), answered: [...answered, { sagaId, stepId, attempt, keepUntil }] };
}

export function resultOf(entry: SentResult): StepResult {
  return entry.result;
}
