/** The node API: requests signed by an enrolled node's key (see functions/http/node-auth.ts). */
import { z } from "zod";
import { machineIdentity } from "../contract/node-id.js";
import { NodeFactsInput, NodeStatus, type NodeRecord } from "../orchestrations/clients/registry/model.js";
import { ProblemError } from "./http/problem.js";
import { defineRoute, httpRoute, json } from "./http/route.js";
import { MailboxCredentialsView, mailboxFor } from "./mailbox-view.js";
import type { ServiceProvider } from "../orchestrations/services.js";

const NodeStatusView = z.object({
  nodeId: z.string(),
  pool: z.string(),
  status: NodeStatus,
  lastError: z.object({ code: z.string(), message: z.string(), at: z.string() }).optional(),
  updatedAt: z.string(),
});

const status = defineRoute({
  name: "nodeStatus",
  method: "GET",
  route: "node/status",
  summary: "The calling node's own status (it polls this while waiting for approval)",
  tag: "node",
  access: "node",
  // The one call a retired node may still make: its agent learns from it that it is done.
  openToRetiredNodes: true,
  responses: { 200: { description: "Status", schema: NodeStatusView }, 401: { description: "Unsigned, badly signed, stale or replayed request" } },
});
const statusView = (n: NodeRecord) => ({ nodeId: n.nodeId, pool: n.pool, status: n.status, lastError: n.lastError, updatedAt: n.updatedAt });

const facts = defineRoute({
  name: "nodeFacts",
  method: "PUT",
  route: "node/facts",
  summary: "Report the calling node's current facts (addresses, kernel, OS version change); its identity may not change",
  tag: "node",
  access: "node",
  body: NodeFactsInput,
  responses: {
    200: { description: "Recorded", schema: NodeStatusView },
    401: { description: "Unsigned, badly signed, stale or replayed request" },
    409: { description: "The facts name a different machine, the node awaits approval (awaiting-approval), or it is retired (node-retired)" },
  },
});
const credentials = defineRoute({
  name: "nodeMailboxCredentials",
  method: "POST",
  route: "node/mailbox-credentials",
  summary: "Fresh mailbox tokens for the calling node (Listen on its queue, Send on node-results); ask again after refreshAfter",
  tag: "node",
  access: "node",
  openToRetiredNodes: "while-compensating",
  responses: {
    200: { description: "Fresh tokens", schema: MailboxCredentialsView },
    401: { description: "Unsigned, badly signed, stale or replayed request" },
    409: { description: "The node is not in a state that has a mailbox (awaiting approval, failed, offboarded)" },
  },
});
const secret = defineRoute({
  name: "nodeSecret",
  method: "POST",
  route: "node/secrets/{ref}",
  summary: "Fetch a one-time secret the saga left for the calling node (the bootstrap kubeconfig); it is deleted on this read",
  tag: "node",
  access: "node",
  params: z.strictObject({ ref: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, "must be a secret reference") }),
  responses: {
    200: { description: "The secret, once", schema: z.object({ ref: z.string(), value: z.string() }) },
    401: { description: "Unsigned, badly signed, stale or replayed request" },
    404: { description: "No such secret for this node (never offered to it, already fetched, or expired)" },
    409: { description: "The node is retired (node-retired)" },
  },
});

export function registerNodeApiRoutes(services: ServiceProvider): void {
  httpRoute(status, services, async ({ node }) => json(200, statusView(node!)));
  httpRoute(facts, services, async ({ node, body, principal, services: { registry } }) => {
    const n = node!;
    // An admin decides on the facts they were shown: they stay as enrolled until that decision.
    if (n.status === "AwaitingApproval") {
      throw new ProblemError(409, "awaiting-approval", "The node is waiting for an administrator's decision", {
        detail: "Facts can be reported again once the node is approved.",
      });
    }
    const claimed = machineIdentity(body);
    if (claimed.machineId !== n.fingerprint.machineId || claimed.smbiosUuid !== n.fingerprint.smbiosUuid) {
      throw new ProblemError(409, "identity-mismatch", "These facts describe a different machine", {
        detail: "machine-id and SMBIOS UUID are the node's identity; a changed identity must enrol again.",
      });
    }
    const updated = await registry.nodes.update(n, () => ({ facts: body }), principal.name, "node.facts");
    return json(200, statusView(updated));
  });
  httpRoute(credentials, services, async ({ node, services: svc }) => {
    const mailbox = mailboxFor(svc, node!);
    if (!mailbox) throw new ProblemError(409, "no-mailbox", "This node has no mailbox in its current state", { detail: `node is ${node!.status}` });
    return json(200, mailbox);
  });
  httpRoute(secret, services, async ({ node, params, services: svc }) => {
    const value = await svc.secrets().take(node!.nodeId, params.ref, svc.now());
    if (value === undefined)
      throw new ProblemError(404, "not-found", "No such secret", { detail: "It was never issued to this node, was already fetched, or expired." });
    await svc.registry.audit.write({
      actor: `node:${node!.nodeId}`,
      action: "secret.fetch",
      objectType: "node",
      objectId: node!.nodeId,
      details: { ref: params.ref },
    });
    return json(200, { ref: params.ref, value }, { "cache-control": "no-store" });
  });
}
