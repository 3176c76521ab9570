/**
 * Waiting for something no one announces (an identity ARM fills in late, a Node turning Ready): ask, then ask again
 * after 1 s, 2 s, 4 s… up to a cap. Most such waits end within a few seconds, where a fixed long interval would add
 * most of an interval each time; the cap keeps a slow case from costing a question per second for minutes.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import type { Poll } from "./timing.js";

/** The wait before question `i + 1` (i from 0). */
export const pollWaitMs = (poll: Poll, i: number): number => Math.min(poll.maxIntervalMs, poll.firstIntervalMs * 2 ** Math.min(i, 40));

/**
 * Asks `ask` until it answers something other than undefined, at most `poll.attempts` times, waiting on durable timers
 * in between; `first` is an answer already in hand (counted as a question) or undefined to start by asking.
 * Throws `exhausted()` when every question came back empty.
 */
export function* pollUntil<T>(
  context: OrchestrationContext,
  poll: Poll,
  ask: () => Generator<df.Task, T | undefined, unknown>,
  exhausted: () => Error,
  first?: { answer: T | undefined },
  /** An external event that ends a wait early: someone can tell that the answer may have changed. */
  wake?: string,
): Generator<df.Task, T, unknown> {
  let answer = first ? first.answer : yield* ask();
  // Waits for `wake` of rounds a timer ended: the replay engine hands an event to the newest open wait of its name,
  // and one raised while the question was being asked reaches such a wait, not the next round's.
  let leftOver: df.Task[] = [];
  for (let i = 0; answer === undefined; i++) {
    if (i + 1 >= poll.attempts) throw exhausted();
    if (leftOver.some((w) => w.isCompleted)) {
      // Woken while asking: the answer may have changed since; ask again at once.
      leftOver = leftOver.filter((w) => !w.isCompleted);
    } else {
      const timer = context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + pollWaitMs(poll, i)));
      if (wake === undefined) yield timer;
      else {
        const woken = context.df.waitForExternalEvent(wake);
        if ((yield context.df.Task.any([timer, woken])) === woken) timer.cancel();
        else leftOver.push(woken);
      }
    }
    answer = yield* ask();
  }
  return answer;
}
