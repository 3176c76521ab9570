/** The mailbox credentials a node receives (at enrolment and on refresh), and who may have them. */
import { MailboxCredentialsSchema } from "../contract/mailbox-credentials.js";
import type { NodeMailboxCredentials } from "../orchestrations/clients/mailbox/mailbox.js";
import type { NodeRecord, NodeStatus } from "../orchestrations/clients/registry/model.js";
import type { Services } from "./composition-root.js";

export const MailboxCredentialsView = MailboxCredentialsSchema;

/** Nodes the saga may talk to: onboarding, onboarded, or being offboarded (reset steps arrive by mailbox too). */
const MAILBOX_STATUSES: ReadonlySet<NodeStatus> = new Set(["Enrolling", "Onboarding", "Ready", "Offboarding"]);

export function mailboxFor(svc: Services, node: NodeRecord): NodeMailboxCredentials | undefined {
  return MAILBOX_STATUSES.has(node.status) ? svc.mailbox().credentialsFor(node.nodeId, svc.now()) : undefined;
}
