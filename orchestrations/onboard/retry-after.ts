/**
 * How a throttled Azure call tells the saga how long to wait — as data, both halves of the convention in one place.
 * ARM answers 429 with Retry-After. An activity cannot wait (its time is wall time, and a worker slot), so it fails
 * with an ArmThrottledError; the app's exception-properties provider turns that into FailureDetails properties
 * (`{ throttled: true, retryAfterMs }`), which the Durable extension keeps in history; the saga's retry loop
 * (azure-call.ts) reads them back from the TaskFailedError, so every replay takes the same decision.
 */
import { isRestError } from "@azure/core-rest-pipeline";
import * as df from "durable-functions";
import { PACED_CODE } from "../clients/arm/write-pacer.js";

export class ArmThrottledError extends Error {
  constructor(
    message: string,
    /** What Retry-After asked for; undefined when the answer had none. */
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
    /** Refused by the service's own pacer, not by ARM: nothing was sent, and the wait is a promised token's. */
    readonly paced = false,
  ) {
    super(message, options);
    this.name = "ArmThrottledError";
  }

  /** An Azure SDK 429 as an ArmThrottledError; anything else unchanged. */
  static from(error: unknown): unknown {
    if (!(isRestError(error) && error.statusCode === 429)) return error;
    // retry-after-ms: the service's own ARM pacer (clients/arm/write-pacer.ts) asks for sub-second waits.
    const ms = Number(error.response?.headers.get("retry-after-ms") ?? Number.NaN);
    const seconds = Number(error.response?.headers.get("retry-after"));
    const retryAfterMs = Number.isFinite(ms) ? Math.round(ms) : Number.isFinite(seconds) ? Math.round(seconds * 1000) : undefined;
    return new ArmThrottledError(error.message, retryAfterMs, { cause: error }, error.code === PACED_CODE);
  }
}

/** The FailureDetails properties of a throttled activity (registered with df.app.setExceptionPropertiesProvider). */
export const throttlingProperties: df.ExceptionPropertiesProvider = {
  getExceptionProperties: (error) =>
    error instanceof ArmThrottledError
      ? { throttled: true, ...(error.paced ? { paced: true } : {}), ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) }
      : undefined,
};

/** Longest Retry-After honoured: a longer ask is taken as this, so one odd answer cannot park a saga for hours. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/** Whether an activity failure seen by the saga was throttling, the wait it asked for (0: none), and whether the pacer's. */
export function throttlingOf(error: unknown): { retryAfterMs: number; paced: boolean } | undefined {
  const properties = error instanceof df.TaskFailedError ? error.failureDetails.properties : legacyProperties(error);
  if (properties?.throttled !== true) return undefined;
  const ms = properties.retryAfterMs;
  return { retryAfterMs: typeof ms === "number" && Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : 0, paced: properties.paced === true };
}

/**
 * The properties where the extension drops FailureDetails (bundles before the out-of-proc fix, Azure/azure-functions-
 * durable-extension#3451): the SDK's activity wrapper still put its TaskFailureDetails JSON in the error's message, and
 * the saga sees `Error("Activity function 'x' failed: <that JSON> \n <details>")`. JSON.stringify never writes a raw
 * newline, so the payload ends at the first one.
 */
function legacyProperties(error: unknown): Record<string, unknown> | undefined {
  if (!(error instanceof Error)) return undefined;
  const at = error.message.indexOf('{"errorType":');
  if (at < 0) return undefined;
  const end = error.message.indexOf("\n", at);
  try {
    const payload: unknown = JSON.parse(error.message.slice(at, end < 0 ? undefined : end).trimEnd());
    const properties = (payload as { properties?: unknown } | null)?.properties;
    return typeof properties === "object" && properties !== null ? (properties as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
