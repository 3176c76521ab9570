/** The mailbox credentials a node receives at enrolment and on refresh over the signed node API. */
import * as z from "zod";

export const MailboxCredentialsSchema = z.object({
  namespace: z.string().describe("Service Bus fully qualified namespace (or an emulator's host:port)"),
  queue: z.string(),
  resultsQueue: z.string(),
  listenSas: z.string().describe("Listen on `queue` only"),
  sendSas: z.string().describe("Send to `resultsQueue` only"),
  expiresAt: z.iso.datetime(),
  refreshAfter: z.iso.datetime(),
});
export type MailboxCredentials = z.infer<typeof MailboxCredentialsSchema>;
