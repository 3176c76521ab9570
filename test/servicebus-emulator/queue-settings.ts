/**
 * A queue's settings: the administration API's QueueDescription with durations in milliseconds, the service's
 * defaults, and the zod schema for queue definitions given to the emulator in code or a JSON config file.
 */
import { z } from "zod";
import { NEVER_MS, parseIsoDuration } from "./iso-duration.js";

export interface QueueSettings {
  lockDurationMs: number;
  maxDeliveryCount: number;
  defaultMessageTimeToLiveMs: number;
  deadLetteringOnMessageExpiration: boolean;
  maxSizeInMegabytes: number;
  maxMessageSizeInKilobytes: number;
  // Kept and reported back so properties round-trip; the emulator does not act on them.
  requiresDuplicateDetection: boolean;
  duplicateDetectionHistoryTimeWindowMs: number;
  enableBatchedOperations: boolean;
  autoDeleteOnIdleMs: number;
  enablePartitioning: boolean;
  enableExpress: boolean;
  status: string;
  userMetadata: string | undefined;
}

/** The service's defaults for a Standard-tier queue. */
export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  lockDurationMs: 60_000,
  maxDeliveryCount: 10,
  defaultMessageTimeToLiveMs: NEVER_MS,
  deadLetteringOnMessageExpiration: false,
  maxSizeInMegabytes: 1024,
  maxMessageSizeInKilobytes: 256,
  requiresDuplicateDetection: false,
  duplicateDetectionHistoryTimeWindowMs: 600_000,
  enableBatchedOperations: true,
  autoDeleteOnIdleMs: NEVER_MS,
  enablePartitioning: false,
  enableExpress: false,
  status: "Active",
  userMetadata: undefined,
};

/**
 * The service requires 5 s to 5 min; the emulator accepts 100 ms so lock-expiry tests take well under a second per
 * lock. Keep real-looking values in anything that may also run against Azure.
 */
export const MIN_LOCK_DURATION_MS = 100;
export const MAX_LOCK_DURATION_MS = 300_000;

/**
 * Queue names as Azure's naming rules give them for `namespaces/queues`: 1–260 letters, digits, `.`, `-`, `_` and `/`
 * (between segments), starting and ending with a letter or digit.
 */
export const QUEUE_NAME = /^(?!.*\/\/)[A-Za-z0-9](?:[A-Za-z0-9._\/-]*[A-Za-z0-9])?$/;

const duration = z
  .union([z.number().int().nonnegative(), z.string()], { error: "expected milliseconds or an ISO 8601 duration such as PT30S" })
  .transform((value, ctx) => {
    if (typeof value === "number") return value;
    const ms = parseIsoDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `'${value}' is not an ISO 8601 duration such as PT30S` });
      return z.NEVER;
    }
    return ms;
  });

/** A queue to create: durations as milliseconds or ISO 8601 strings (`PT30S`). */
export const queueDefinitionSchema = z
  .object({
    name: z.string().max(260).regex(QUEUE_NAME, "letters, digits, '.', '-', '_' and '/' between segments, starting and ending with a letter or digit"),
    lockDuration: duration.refine((ms) => ms >= MIN_LOCK_DURATION_MS && ms <= MAX_LOCK_DURATION_MS, "lock duration out of range").optional(),
    maxDeliveryCount: z.number().int().min(1).optional(),
    defaultMessageTimeToLive: duration.refine((ms) => ms > 0, "must be positive").optional(),
    deadLetteringOnMessageExpiration: z.boolean().optional(),
    maxSizeInMegabytes: z.number().int().positive().optional(),
    userMetadata: z.string().max(1024).optional(),
  })
  .strict();

export type QueueDefinition = z.input<typeof queueDefinitionSchema>;

export function settingsFromDefinition(definition: z.output<typeof queueDefinitionSchema>): QueueSettings {
  return {
    ...DEFAULT_QUEUE_SETTINGS,
    lockDurationMs: definition.lockDuration ?? DEFAULT_QUEUE_SETTINGS.lockDurationMs,
    maxDeliveryCount: definition.maxDeliveryCount ?? DEFAULT_QUEUE_SETTINGS.maxDeliveryCount,
    defaultMessageTimeToLiveMs: definition.defaultMessageTimeToLive ?? DEFAULT_QUEUE_SETTINGS.defaultMessageTimeToLiveMs,
    deadLetteringOnMessageExpiration: definition.deadLetteringOnMessageExpiration ?? false,
    maxSizeInMegabytes: definition.maxSizeInMegabytes ?? DEFAULT_QUEUE_SETTINGS.maxSizeInMegabytes,
    userMetadata: definition.userMetadata,
  };
}
