/**
 * `POST /api/enrol`: a node joins with its token, facts and public key (see orchestrations/use-cases/enrol.ts). The
 * enrolment is the root of the onboarding's trace (or a child of the host's request span): the saga it starts carries
 * this span's context in its input.
 */
import { z } from "zod";
import { exportPublicKey, keyIdOf, PublicKeySchema } from "../contract/keys.js";
import { adopts, enrol, EnrolError, type EnrolOutcome } from "../orchestrations/use-cases/enrol.js";
import { recordEnrolment } from "../orchestrations/observability/metrics.js";
import { inSpan } from "../orchestrations/observability/tracing.js";
import { TOKEN_PATTERN } from "../orchestrations/use-cases/token-secret.js";
import { NodeFactsInput, NodeStatus } from "../orchestrations/clients/registry/model.js";
import { defineRoute, durableHttpRoute, json } from "./http/route.js";
import type { ServiceProvider } from "../orchestrations/services.js";
import { MailboxCredentialsView, mailboxFor } from "./mailbox-view.js";
import { proveKeyPossession } from "./http/node-auth.js";
import type { NonceClaim } from "../contract/nonce-store.js";

export const EnrolBody = z.strictObject({
  token: z.string().regex(TOKEN_PATTERN, "must be an enrolment token (fnt.<id>.<secret>)"),
  facts: NodeFactsInput,
  publicKey: PublicKeySchema,
});

export const EnrolResponse = z.object({
  nodeId: z.string(),
  pool: z.string(),
  status: NodeStatus,
  keyId: z.string().describe("The id the node signs its requests with (keyid)"),
  approval: z.enum(["approval-required", "clone-quarantined"]).optional().describe("Why the node waits, when it does"),
  nodeApi: z.object({ statusPath: z.string(), mailboxCredentialsPath: z.string() }),
  poll: z.object({ intervalSeconds: z.int() }),
  service: z.object({ publicKey: z.string(), keyId: z.string() }).describe("Verifies the signature on every step envelope"),
  mailbox: MailboxCredentialsView.optional().describe("Absent while the node waits for approval"),
  adoption: z
    .object({ tags: z.record(z.string(), z.string()), command: z.string() })
    .optional()
    .describe("Adopt pools only: connect azcmagent with these tags; onboarding starts when the Arc machine appears"),
});

const route = defineRoute({
  name: "enrol",
  method: "POST",
  route: "enrol",
  summary: "Enrol a node: token + facts + Ed25519 public key, the request signed by that key",
  tag: "enrolment",
  access: "anonymous",
  body: EnrolBody,
  responses: {
    201: { description: "Enrolled; onboarding started", schema: EnrolResponse },
    200: { description: "Already enrolled (a retry); nothing new happened", schema: EnrolResponse },
    202: { description: "Enrolled; waiting for an admin to approve", schema: EnrolResponse },
    401: { description: "Not signed by the key in the body (proof of possession; RFC 9421 profile of the node API)" },
    403: { description: "Token unknown, expired, revoked or used up (distinct problem types)" },
    409: { description: "Clone refused, or a replacement in progress (Retry-After)" },
    429: { description: "Pool at its in-flight limit (Retry-After)" },
  },
});

export function registerEnrolRoute(services: ServiceProvider): void {
  durableHttpRoute(route, services, ({ request, body, bytes, workflows, context, services: svc }) =>
    inSpan("enrol", {}, async (span) => {
      const { registry, now, events } = svc;
      let outcome: EnrolOutcome;
      let keyId: string;
      try {
        // The nonce is verified here but recorded by enrolment, with its first write.
        let nonce: NonceClaim | undefined;
        await proveKeyPossession(svc, request, bytes, body.publicKey, { claim: (entry) => ((nonce = entry), true) });
        keyId = keyIdOf(body.publicKey);
        outcome = await enrol({ registry, now, events: events(), workflows, nonce }, { ...body, keyId });
      } catch (error) {
        recordEnrolment(error instanceof EnrolError ? error.code : error instanceof Error ? error.name : "error");
        throw error;
      }
      const servicePublicKey = exportPublicKey(svc.signingKey());
      const { node } = outcome;
      recordEnrolment(outcome.kind, node.pool);
      span.setAttributes({ "flexnode.node": node.nodeId, "flexnode.pool": node.pool, "flexnode.enrol.outcome": outcome.kind });
      context.log(`enrol ${outcome.kind}: node ${node.nodeId} pool ${node.pool} status ${node.status}`);
      const status = outcome.kind === "created" ? 201 : outcome.kind === "replayed" ? 200 : 202;
      return json(status, {
        nodeId: node.nodeId,
        pool: node.pool,
        status: node.status,
        keyId,
        approval: outcome.kind === "awaitingApproval" ? outcome.reason : undefined,
        nodeApi: { statusPath: "/api/node/status", mailboxCredentialsPath: "/api/node/mailbox-credentials" },
        poll: { intervalSeconds: outcome.kind === "awaitingApproval" ? 30 : 5 },
        service: { publicKey: servicePublicKey, keyId: keyIdOf(servicePublicKey) },
        mailbox: mailboxFor(svc, node),
        adoption: !node.arcMachineId && (await adopts({ registry }, node)) ? adoptionOf(node.pool, node.nodeId) : undefined,
      });
    }),
  );
}

function adoptionOf(pool: string, nodeId: string): { tags: Record<string, string>; command: string } {
  const tags = { "flexnode-pool": pool, "flexnode-node": nodeId };
  const list = Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return { tags, command: `azcmagent connect --resource-group <pool Arc resource group> --location <region> --tags "${list}" …` };
}
