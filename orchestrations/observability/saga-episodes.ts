/**
 * A span per saga episode, and the saga's end as a metric, around an orchestrator without touching its decisions.
 *
 * The orchestrator runs again from its start in every episode (replay), synchronously, inside one invocation. So the
 * span starts when the generator starts and ends once that synchronous run is over (or when the saga returns), with
 * the parent the saga's input names: every episode of one onboarding lands in the enrolment's trace. The phases come
 * from the custom status the saga sets (a replay sets them all again, in order), and the end is recorded only by the
 * episode that is not replaying, so a replay counts nothing twice. None of this feeds back into the saga.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { recordSagaEnd } from "./metrics.js";
import { contextOf, markFailed, sagaTraceparent, tracer } from "./tracing.js";

type Orchestrator = (context: OrchestrationContext) => Generator<df.Task, unknown, unknown>;

export function observedSaga(name: string, orchestrator: Orchestrator): Orchestrator {
  return function* (context: OrchestrationContext): Generator<df.Task, unknown, unknown> {
    const input = context.df.getInput<{ nodeId?: unknown } | undefined>();
    const traceparent = sagaTraceparent(input);
    const startedAt = context.df.currentUtcDateTime;
    const phases: string[] = [];
    const setCustomStatus = context.df.setCustomStatus.bind(context.df);
    context.df.setCustomStatus = (status: unknown) => {
      const phase = (status as { phase?: unknown } | null)?.phase;
      if (typeof phase === "string" && phase !== phases.at(-1)) phases.push(phase);
      setCustomStatus(status);
    };
    // Only sagas that carry a trace get episode spans: the others would each start a trace of their own per episode.
    const span = traceparent
      ? tracer().startSpan(
          `saga ${name}`,
          { attributes: { "flexnode.saga": name, "flexnode.saga.instance": context.df.instanceId, ...nodeOf(input) } },
          contextOf(traceparent),
        )
      : undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (phases.length > 0) span?.setAttribute("flexnode.saga.phase", phases.at(-1)!);
      span?.end();
    };
    setImmediate(end);
    try {
      const output = yield* orchestrator(context);
      if (!context.df.isReplaying) {
        const status = (output as { status?: unknown; error?: { code?: unknown } } | undefined) ?? {};
        recordSagaEnd({
          saga: name,
          outcome: typeof status.status === "string" ? status.status : "Completed",
          phase: failedPhase(phases) ?? phases.at(-1) ?? "none",
          ...(typeof status.error?.code === "string" ? { errorCode: status.error.code } : {}),
          durationMs: context.df.currentUtcDateTime.getTime() - startedAt.getTime(),
        });
      }
      return output;
    } catch (error) {
      if (span) markFailed(span, error);
      throw error;
    } finally {
      end();
    }
  };
}

/** The phase a saga was in when it turned to compensation. */
function failedPhase(phases: string[]): string | undefined {
  const at = phases.indexOf("compensating");
  return at > 0 ? phases[at - 1] : undefined;
}

function nodeOf(input: { nodeId?: unknown } | undefined): Record<string, string> {
  return typeof input?.nodeId === "string" ? { "flexnode.node": input.nodeId } : {};
}
