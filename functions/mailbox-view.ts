/** The mailbox credentials a node receives (at enrolment and on refresh), and who may have them. */
import { MailboxCredentialsSchema } from "../contract/mailbox-credentials.js";
import type { NodeMailboxCredentials } from "../orchestrations/clients/mailbox/mailbox.js";
import type { NodeRecord } from "../orchestrations/clients/registry/model.js";
import { ownsMailbox } from "../contract/node-status.js";
import { stillCompensating } from "./http/node-auth.js";
import type { Services } from "../orchestrations/services.js";

export const MailboxCredentialsView = MailboxCredentialsSchema;

/**
 * A node in a mailbox status gets credentials; so does a Failed node whose mailbox its compensation has not removed
 * yet (the mailbox goes last): the compensation takes the node (Failed) before it asks the agent to reset through it.
 */
export function mailboxFor(svc: Services, node: NodeRecord): NodeMailboxCredentials | undefined {
  return ownsMailbox(node.status) || stillCompensating(node) ? svc.mailbox().credentialsFor(node.nodeId, svc.now()) : undefined;
}
