/**
 * The node API: every request signed with the node key (RFC 9421 profile in contract/node-request.ts), re-signed on
 * each retry because a signature carries a one-time nonce. Used for the node's status while it waits for approval,
 * fresh mailbox credentials, one-time secrets (the `SecretSource` the fetchSecret executor reads), and facts that
 * changed since enrolment (facts-report.ts).
 */
import type { KeyObject } from "node:crypto";
import * as z from "zod";
import { MailboxCredentialsSchema, type MailboxCredentials } from "../../contract/mailbox-credentials.js";
import type { NodeFacts } from "../../contract/node-facts.js";
import { signNodeRequest } from "../../contract/node-request.js";
import type { SecretSource } from "./ports.js";
import { assertSecureUrl } from "./enrolment-url.js";
import type { HttpResponse } from "./http-transport.js";
import { callWithRetries, type RetryContext } from "./retrying-call.js";
import { problemOf, ServiceRefusedError, UnexpectedResponseError } from "./service-errors.js";

export const NodeStatusSchema = z.object({
  nodeId: z.string(),
  pool: z.string(),
  status: z.string(),
  lastError: z.object({ code: z.string(), message: z.string(), at: z.string() }).optional(),
  updatedAt: z.string(),
});
export type NodeStatusView = z.infer<typeof NodeStatusSchema>;

const SecretSchema = z.object({ ref: z.string(), value: z.string() });
const SECRET_REF = /^[a-z0-9][a-z0-9.-]{0,62}$/;

export interface NodeApiOptions extends RetryContext {
  serviceUrl: string;
  privateKey: KeyObject;
  paths: { statusPath: string; mailboxCredentialsPath: string };
}

export class NodeApiClient implements SecretSource {
  constructor(private readonly o: NodeApiOptions) {
    assertSecureUrl(new URL(o.serviceUrl), "serviceUrl");
  }

  async status(): Promise<NodeStatusView> {
    return this.parse("node status", await this.call("node status", "GET", this.o.paths.statusPath), 200, NodeStatusSchema);
  }

  async mailboxCredentials(): Promise<MailboxCredentials> {
    return this.parse(
      "mailbox credentials",
      await this.call("mailbox credentials", "POST", this.o.paths.mailboxCredentialsPath),
      200,
      MailboxCredentialsSchema,
    );
  }

  /** Records the machine's current facts; the service refuses (409) facts that name another machine. */
  async reportFacts(facts: NodeFacts): Promise<NodeStatusView> {
    return this.parse("node facts", await this.call("node facts", "PUT", "/api/node/facts", JSON.stringify(facts)), 200, NodeStatusSchema);
  }

  /** SecretSource: a one-time secret, deleted by the service as it is read. The value is never logged. */
  async take(ref: string): Promise<string> {
    if (!SECRET_REF.test(ref))
      throw new ServiceRefusedError(`secret ${JSON.stringify(ref.slice(0, 64))}`, 400, { type: "bad-secret-ref", title: "not a secret reference", errors: [] });
    const response = await this.call(`secret ${ref}`, "POST", `/api/node/secrets/${ref}`);
    return this.parse(`secret ${ref}`, response, 200, SecretSchema).value;
  }

  private call(operation: string, method: string, path: string, body = ""): Promise<HttpResponse> {
    const url = `${this.o.serviceUrl}${path}`;
    const type: Record<string, string> = body ? { "content-type": "application/json" } : {};
    return callWithRetries(
      operation,
      async () => {
        const signature = await signNodeRequest({ method, url, body }, { privateKey: this.o.privateKey, now: this.o.now() });
        return { method, url, headers: { ...type, ...signature, accept: "application/json" }, body };
      },
      this.o,
    );
  }

  private parse<S extends z.ZodType>(operation: string, response: HttpResponse, expected: number, schema: S): z.output<S> {
    if (response.status !== expected) throw new ServiceRefusedError(operation, response.status, problemOf(response));
    let json: unknown;
    try {
      json = JSON.parse(response.body);
    } catch {
      throw new UnexpectedResponseError(`${operation} answered ${response.status} with a body that is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new UnexpectedResponseError(`${operation}: ${issue.path.join(".") || "body"}: ${issue.message}`);
    }
    return parsed.data;
  }
}
