/** A node's lifecycle as both sides name it: the service records it, the agent reads it from the node API. */
import { z } from "zod";

export const NodeStatus = z.enum(["Enrolling", "AwaitingApproval", "Onboarding", "Ready", "Failed", "Offboarding", "Offboarded"]);
export type NodeStatus = z.infer<typeof NodeStatus>;

/**
 * Statuses in which a node owns a mailbox: the saga may talk to it (onboarding, onboarded, or being offboarded —
 * reset steps arrive by mailbox too). In any other status the service hands out no mailbox credentials and the agent
 * stops asking for them.
 */
export const MAILBOX_STATUSES: ReadonlySet<NodeStatus> = new Set(["Enrolling", "Onboarding", "Ready", "Offboarding"]);
export const ownsMailbox = (status: string): boolean => (MAILBOX_STATUSES as ReadonlySet<string>).has(status);
