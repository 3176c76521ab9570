/**
 * The node's mailbox: its own Service Bus queue (data-plane management, not ARM), and the signed envelope of each
 * step attempt the saga sends into it.
 */
import { buildStepEnvelope } from "../../contract/step-envelope.js";
import type { Services } from "../services.js";
import { BOOTSTRAP_SECRET_REF, type CreatedObject } from "./created-objects.js";
import { reofferBootstrapKubeconfig } from "./kube.js";
import type { NodeContext } from "./node-context.js";
import { planFor, planNode } from "./node-plan.js";
import { currentTraceparent } from "../observability/tracing.js";
import { record } from "./records.js";
import { queueFor } from "../clients/mailbox/mailbox.js";

export type MailboxDeps = Pick<Services, "mailbox" | "registry" | "kube" | "secrets" | "signingKey" | "settings" | "now">;

export interface SendStepInput {
  context: NodeContext;
  sagaId: string;
  stepId: string;
  attempt: number;
  timeoutMs: number;
  /** Absent for `reset`, which needs no cluster details. */
  kubernetesVersion?: string;
  apiServer?: string;
  /** Absent for `reset`, and in histories written before clusterInfo returned it. */
  clusterDns?: string;
}

export function createMailboxActivities({ mailbox, registry, kube, secrets, signingKey, settings, now }: MailboxDeps) {
  return {
    openMailbox: async (input: { nodeId: string }): Promise<CreatedObject> => {
      // Recorded before it is created, as every object is: compensation and the sweeper must never meet a queue of a
      // live onboarding that its node does not list.
      const obj: CreatedObject = { kind: "mailbox", id: queueFor(input.nodeId) };
      await record(registry, input.nodeId, obj, "add");
      await mailbox().open(input.nodeId);
      return obj;
    },

    /** Builds the envelope for one step attempt from the plan and sends it; the plan is rebuilt here, not kept in history. */
    sendStep: async (input: SendStepInput): Promise<void> => {
      const node = await planNode(registry, input.context);
      // `reset` is not a plan step: it undoes whatever the agent's manifest records, so it needs no cluster details.
      const reset = input.stepId === "reset";
      const caPem = reset ? "" : (await kube(input.context.clusterResourceId)).caPem;
      const step = reset
        ? undefined
        : planFor(
            input.context,
            node,
            { kubernetesVersion: input.kubernetesVersion!, apiServer: input.apiServer!, clusterDns: input.clusterDns, caPem },
            settings.ARTIFACT_CATALOG,
          ).find((s) => s.stepId === input.stepId);
      if (!step && !reset) throw new Error(`no step ${input.stepId} in the plan`);
      if (step?.kind === "fetchSecret" && step.params.secretRef === BOOTSTRAP_SECRET_REF && input.attempt > 1)
        await reofferBootstrapKubeconfig({ kube, secrets }, input.context);
      // A wait on the node must end before the saga stops waiting for its result (scaled timing: tests, the sandbox).
      const params =
        step?.kind === "waitFor" && typeof step.params.timeoutSeconds === "number"
          ? { ...step.params, timeoutSeconds: Math.max(1, Math.floor((step.params.timeoutSeconds * input.timeoutMs) / step.timeoutMs)) }
          : step?.params;
      const issuedAt = now();
      // This activity's span: the node's result re-enters the trace under it (none when telemetry is off).
      const traceparent = currentTraceparent();
      const envelope = buildStepEnvelope(
        {
          nodeId: node.nodeId,
          sagaId: input.sagaId,
          stepId: input.stepId,
          attempt: input.attempt,
          kind: reset ? "reset" : step!.kind,
          params: reset ? { scope: "all" } : params!,
          issuedAt,
          // Valid while the saga still waits for it: a node that picks it up later must not act on it.
          expiresAt: new Date(issuedAt.getTime() + input.timeoutMs),
          ...(traceparent ? { traceparent } : {}),
        },
        { privateKey: signingKey() },
      );
      await mailbox().send(envelope);
    },
  };
}
