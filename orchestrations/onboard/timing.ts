/**
 * How long the saga waits and how it retries. Production values are sized for ARM throttling (a write bucket refills
 * at 10/s per principal, and 429s ask for seconds) and for slow nodes; tests pass smaller ones in the saga input.
 */
import { z } from "zod";

/** A poll whose waits start at `firstIntervalMs` and double up to `maxIntervalMs`; `attempts` bounds the questions. */
export interface Poll {
  firstIntervalMs: number;
  maxIntervalMs: number;
  attempts: number;
}

export interface Timing {
  /** Retries of activities that call Azure (ARM, Service Bus management, Kubernetes API): see azure-call.ts. */
  azureRetry: { firstRetryMs: number; backoff: number; maxRetryMs: number; maxAttempts: number };
  /** Polls for the Arc machine's identity, when ARM's PUT answer has no principal yet (see poll.ts). */
  principalPoll: Poll;
  /** Polls for the Node object to be Ready, when it is not at the first question (see poll.ts). */
  readyPoll: Poll;
  /**
   * Looks for a pool slot while the node waits for one (a node that frees a slot hands it on and wakes the heir's
   * saga at once; the looks catch a wake that was lost and a limit raised meanwhile).
   */
  slotPoll: Poll;
  /** Multiplies every node step's own timeout (1 in production). */
  stepTimeoutScale: number;
  /** How long compensation waits for the agent to confirm its reset. */
  resetWaitMs: number;
  /**
   * Following a long-running ARM operation (the Arc machine DELETE): the wait between looks when ARM gives no
   * Retry-After, the longest single wait honoured, and how long in all before the removal counts as failed.
   */
  lroWait: { defaultIntervalMs: number; maxIntervalMs: number; maxTotalMs: number };
}

export const PRODUCTION_TIMING: Timing = {
  azureRetry: { firstRetryMs: 5_000, backoff: 2, maxRetryMs: 60_000, maxAttempts: 6 },
  // Short first waits (an identity or a Ready condition is usually a second or two late, not minutes), growing to the
  // fixed intervals these polls used to have, with at least the total wait they had (120 s and 290 s).
  principalPoll: { firstIntervalMs: 1_000, maxIntervalMs: 5_000, attempts: 27 },
  readyPoll: { firstIntervalMs: 1_000, maxIntervalMs: 10_000, attempts: 33 },
  // Slots are handed on with a wake, and a raised limit moves and wakes the longest waiters: these looks only catch a
  // wake that was lost or a slot freed with no one to hand it to, so they can be rare (each costs up to 3 registry
  // requests: 2,000 nodes at 100 in flight spent 62 per saga with looks from 1 min doubling to 30 min). 2 min
  // doubling to 1 h; 29 looks wait about 24 h, after which the node fails (SlotWaitExpired) and its Azure side is
  // removed: a pool that has not freed a slot in a day needs an operator.
  slotPoll: { firstIntervalMs: 2 * 60_000, maxIntervalMs: 60 * 60_000, attempts: 29 },
  stepTimeoutScale: 1,
  resetWaitMs: 120_000,
  lroWait: { defaultIntervalMs: 30_000, maxIntervalMs: 10 * 60_000, maxTotalMs: 2 * 3_600_000 },
};

export function timingFrom(overrides: Partial<Timing> | undefined): Timing {
  return { ...PRODUCTION_TIMING, ...overrides };
}

const Policy = z.strictObject({ firstRetryMs: z.int().min(1), backoff: z.number().min(1), maxRetryMs: z.int().min(1), maxAttempts: z.int().min(1).max(20) });
const PollSchema = z
  .strictObject({ firstIntervalMs: z.int().min(1), maxIntervalMs: z.int().min(1), attempts: z.int().min(1) })
  .refine((p) => p.maxIntervalMs >= p.firstIntervalMs, { message: "maxIntervalMs must not be below firstIntervalMs", path: ["maxIntervalMs"] });
const LroWait = z.strictObject({ defaultIntervalMs: z.int().min(1), maxIntervalMs: z.int().min(1), maxTotalMs: z.int().min(1) });
/** `SAGA_TIMING` (JSON): overrides for tests and the local sandbox; production leaves it unset. */
export const TimingOverrides = z
  .strictObject({
    azureRetry: Policy,
    principalPoll: PollSchema,
    readyPoll: PollSchema,
    slotPoll: PollSchema,
    stepTimeoutScale: z.number().positive(),
    resetWaitMs: z.int().min(1),
    lroWait: LroWait,
  })
  .partial();
