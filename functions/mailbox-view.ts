/** The mailbox credentials a node receives (at enrolment and on refresh), and who may have them. */
import { MailboxCredentialsSchema } from "../contract/mailbox-credentials.js";
import type { NodeMailboxCredentials } from "../orchestrations/clients/mailbox/mailbox.js";
import type { NodeRecord } from "../orchestrations/clients/registry/model.js";
import { ownsMailbox } from "../contract/node-status.js";
import type { Services } from "../orchestrations/services.js";

export const MailboxCredentialsView = MailboxCredentialsSchema;

export function mailboxFor(svc: Services, node: NodeRecord): NodeMailboxCredentials | undefined {
  return ownsMailbox(node.status) ? svc.mailbox().credentialsFor(node.nodeId, svc.now()) : undefined;
}
