/**
 * `POST /api/enrol` from the node's side, signed by the node key it registers (proof of possession): token + facts + public key in, node id, the service's envelope key, the node
 * API paths and (unless the node waits for approval) mailbox credentials out. Transient trouble is retried with
 * backoff; 429/503 wait for the service's Retry-After; a problem+json refusal stops with the problem's own words.
 */
import type { KeyObject } from "node:crypto";
import * as z from "zod";
import { keyIdOf, KeyIdSchema, PublicKeySchema } from "../../contract/keys.js";
import { MailboxCredentialsSchema } from "../../contract/mailbox-credentials.js";
import type { NodeFacts } from "../../contract/node-facts.js";
import { signNodeRequest } from "../../contract/node-request.js";
import { ENROL_PATH } from "./enrolment-url.js";
import { callWithRetries, type RetryContext } from "./retrying-call.js";
import { problemOf, ServiceRefusedError, UnexpectedResponseError } from "./service-errors.js";

/** The agent's reading of the service's EnrolResponse (functions/enrol.ts); unknown extra fields are ignored. */
export const EnrolResponseSchema = z.object({
  nodeId: z.string().regex(/^[\x21-\x7e]{1,256}$/),
  pool: z.string().min(1),
  status: z.string().min(1),
  keyId: KeyIdSchema,
  approval: z.string().optional(),
  nodeApi: z.object({ statusPath: z.string().startsWith("/"), mailboxCredentialsPath: z.string().startsWith("/") }),
  poll: z.object({ intervalSeconds: z.int().min(1).max(3600) }),
  service: z.object({ publicKey: PublicKeySchema, keyId: KeyIdSchema }),
  mailbox: MailboxCredentialsSchema.optional(),
});
export type EnrolResponse = z.infer<typeof EnrolResponseSchema>;

export interface EnrolRequest {
  serviceUrl: string;
  token: string;
  facts: NodeFacts;
  publicKey: string;
  /** The private half of `publicKey`: the request is signed with it (the service registers only a key it saw used). */
  privateKey: KeyObject;
}

export interface EnrolOutcome {
  /** 201 enrolled now, 200 already enrolled with this key (a retry), 202 waiting for approval. */
  httpStatus: 200 | 201 | 202;
  response: EnrolResponse;
}

export async function requestEnrolment(request: EnrolRequest, ctx: RetryContext): Promise<EnrolOutcome> {
  const body = JSON.stringify({ token: request.token, facts: request.facts, publicKey: request.publicKey });
  const url = `${request.serviceUrl}${ENROL_PATH}`;
  // Signed afresh for every attempt: each carries its own nonce and time, as the service accepts each nonce once.
  const response = await callWithRetries(
    "enrolment",
    async () => {
      const signature = await signNodeRequest({ method: "POST", url, body }, { privateKey: request.privateKey, now: ctx.now() });
      return { method: "POST", url, headers: { "content-type": "application/json", accept: "application/json", ...signature }, body };
    },
    ctx,
  );
  if (response.status !== 200 && response.status !== 201 && response.status !== 202) {
    throw new ServiceRefusedError("enrolment", response.status, problemOf(response));
  }
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    throw new UnexpectedResponseError(`enrolment answered ${response.status} with a body that is not JSON (a proxy in the way?)`);
  }
  const parsed = EnrolResponseSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UnexpectedResponseError(`enrolment answered ${response.status} but ${issue.path.join(".") || "the body"}: ${issue.message}`);
  }
  const answer = parsed.data;
  // The service names our key by its thumbprint; a different one means it registered some other key for this node.
  if (answer.keyId !== keyIdOf(request.publicKey))
    throw new UnexpectedResponseError(`the service registered key ${answer.keyId}, not this node's key ${keyIdOf(request.publicKey)}`);
  if (answer.service.keyId !== keyIdOf(answer.service.publicKey)) throw new UnexpectedResponseError("the service's key id does not match its public key");
  return { httpStatus: response.status, response: answer };
}
