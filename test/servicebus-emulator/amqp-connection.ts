/**
 * One client connection: CBS claims, and the links opened on it. Every link must be covered by a claim put on this
 * connection for its address (the service authorizes before it looks the entity up, so a caller without rights
 * cannot probe which queues exist). When a claim expires without a fresh put-token, links that relied on it are
 * detached with `amqp:unauthorized-access`.
 */
import type { Connection, EventContext, link, Receiver, Sender } from "rhea";
import type { AccessRight, AccessRules } from "./access-rules.js";
import type { AuthorizedBy, LinkRef } from "./delivery-log.js";
import { ConnectionClaims, type AudienceClaim } from "./connection-claims.js";
import { ConsumerLink } from "./consumer-link.js";
import { ManagementEndpoint } from "./management-endpoint.js";
import { ProducerLink } from "./producer-link.js";
import type { BrokerContext } from "./queue.js";
import type { QueueRegistry } from "./queue-registry.js";
import { ReplyLinks, type Response } from "./request-response.js";
import { parseResourceUri, splitPath } from "./resource-uri.js";
import { answerAttach, refuseLink } from "./rhea-link.js";
import { checkSasToken } from "./token-check.js";

export interface AmqpEnvironment {
  registry: QueueRegistry;
  context: BrokerContext;
  rules: AccessRules;
  /** Host names audiences may name. */
  hosts: ReadonlySet<string>;
  /** Host used in resource URIs in error descriptions. */
  namespaceHost: string;
  maxMessageSizeBytes: number;
}

const SAS_TOKEN_TYPE = "servicebus.windows.net:sastoken";
const MANAGEMENT = "$management";

/** A link that holds on to a claim. */
interface Binding {
  link: link;
  segments: readonly string[];
  right: AccessRight | undefined;
  address: string;
  linkName: string;
  claim: AudienceClaim;
  detach(condition: string, description: string): void;
  /** The connection is gone: drop broker-side state without talking to the peer. */
  forget(): void;
}

export class AmqpConnection {
  private readonly claims = new ConnectionClaims();
  private readonly replies = new ReplyLinks();
  private readonly bindings = new Set<Binding>();
  private gone = false;

  constructor(
    readonly id: string,
    private readonly connection: Connection,
    private readonly env: AmqpEnvironment,
    private readonly onGone: () => void,
  ) {
    connection.on("sender_open", (context: EventContext) => {
      if (context.sender) this.onSenderOpen(context.sender);
    });
    connection.on("receiver_open", (context: EventContext) => {
      if (context.receiver) this.onReceiverOpen(context.receiver);
    });
    connection.on("connection_close", () => this.dispose());
    connection.on("disconnected", () => this.dispose());
    connection.on("connection_error", () => undefined);
    connection.on("session_error", () => undefined);
  }

  /** Detaches links whose claim expired, unless another unexpired claim on this connection still covers them. */
  expireClaims(nowMs: number): void {
    if (this.claims.removeExpired(nowMs).length === 0) return;
    for (const binding of [...this.bindings]) {
      if (this.claims.get(binding.claim.key) === binding.claim) continue;
      const replacement = this.claims.authorize(binding.segments, binding.right, nowMs);
      if (replacement) {
        binding.claim = replacement;
        continue;
      }
      const description = `Unauthorized access. The token for '${binding.claim.audienceUri}' expired at ${new Date(binding.claim.claim.expiresAtMs).toISOString()} and was not renewed.`;
      // Logged once the client has answered the detach, so a test waiting for it knows the SDK has seen it.
      binding.link.once(binding.link.is_sender() ? "sender_close" : "receiver_close", () => {
        this.env.context.log.append({
          kind: "linkDetached",
          connectionId: this.id,
          linkName: binding.linkName,
          address: binding.address,
          condition: "amqp:unauthorized-access",
          description,
        });
      });
      binding.detach("amqp:unauthorized-access", description);
      this.bindings.delete(binding);
    }
  }

  close(): void {
    if (this.gone) return;
    this.connection.close({ condition: "amqp:connection:forced", description: "The emulator is shutting down." });
    this.dispose();
  }

  private onSenderOpen(sender: Sender): void {
    const address = sender.source?.address ?? "";
    if (address === "$cbs") {
      answerAttach(sender, { source: { address }, target: targetOf(sender) });
      this.replies.register(sender);
      return;
    }
    const segments = splitPath(address);
    if (segments[segments.length - 1] === MANAGEMENT) {
      const claim = this.requireClaim(sender, segments, undefined);
      if (!claim) return;
      answerAttach(sender, { source: { address }, target: targetOf(sender) });
      this.replies.register(sender);
      this.bind(sender, segments, undefined, claim, () => undefined);
      return;
    }
    const filter = sender.source?.filter as Record<string, unknown> | undefined;
    if (filter?.["com.microsoft:session-filter"] !== undefined) {
      this.refuse(sender, address, "amqp:not-implemented", "The emulator does not support sessions; use one queue per receiver instead.");
      return;
    }
    const claim = this.requireClaim(sender, segments, "Listen");
    if (!claim) return;
    const resolved = this.env.registry.resolve(address);
    if (!resolved) {
      this.refuse(sender, address, "amqp:not-found", `The messaging entity '${this.resourceUri(segments)}' could not be found.`);
      return;
    }
    answerAttach(sender, { source: { address }, target: targetOf(sender) });
    const mode = sender.snd_settle_mode === 1 ? "receiveAndDelete" : "peekLock";
    // The link handler and its binding refer to each other; the holder breaks the cycle.
    const holder: { binding?: Binding } = {};
    const consumer = new ConsumerLink(
      sender,
      resolved.entity,
      mode,
      () => this.linkRef(holder.binding, sender.name, claim),
      () => {
        if (holder.binding) this.bindings.delete(holder.binding);
      },
    );
    holder.binding = this.bind(
      sender,
      segments,
      "Listen",
      claim,
      () => consumer.forget(),
      (c, d) => consumer.detach(c, d),
    );
    this.env.context.log.append({ kind: "linkAttached", role: "receive", entityPath: resolved.entity.path, link: consumer.ref });
    consumer.start();
  }

  private onReceiverOpen(receiver: Receiver): void {
    const address = receiver.target?.address ?? "";
    if (address === "$cbs") {
      answerAttach(receiver, { target: { address }, source: sourceOf(receiver) });
      receiver.on("message", (context: EventContext) => this.onRequest(context, (request) => this.putToken(request)));
      receiver.on("receiver_error", () => undefined);
      return;
    }
    const segments = splitPath(address);
    if (segments[segments.length - 1] === MANAGEMENT) {
      const claim = this.requireClaim(receiver, segments, undefined);
      if (!claim) return;
      answerAttach(receiver, { target: { address }, source: sourceOf(receiver) });
      const entityPath = address.slice(0, address.length - MANAGEMENT.length).replace(/\/$/, "");
      const binding = this.bind(receiver, segments, undefined, claim, () => undefined);
      const endpoint = new ManagementEndpoint(
        entityPath,
        this.env.registry,
        (right) => {
          const granted = this.claims.authorize(segments, right, this.env.context.clock.now());
          return granted ? this.linkRef(binding, receiver.name, granted) : undefined;
        },
        this.resourceUri(segments.slice(0, -1)),
      );
      receiver.on("message", (context: EventContext) => this.onRequest(context, (request) => endpoint.handle(request)));
      receiver.on("receiver_error", () => undefined);
      receiver.on("receiver_close", () => this.bindings.delete(binding));
      return;
    }
    const claim = this.requireClaim(receiver, segments, "Send");
    if (!claim) return;
    const resolved = this.env.registry.resolve(address);
    if (!resolved) {
      this.refuse(receiver, address, "amqp:not-found", `The messaging entity '${this.resourceUri(segments)}' could not be found.`);
      return;
    }
    if (resolved.entity !== resolved.queue.active) {
      this.refuse(receiver, address, "amqp:not-allowed", "Cannot send messages to a dead-letter queue.");
      return;
    }
    answerAttach(receiver, { target: { address }, source: sourceOf(receiver), maxMessageSize: this.env.maxMessageSizeBytes });
    const holder: { binding?: Binding } = {};
    const producer = new ProducerLink(
      receiver,
      resolved.queue,
      this.env.registry,
      this.env.maxMessageSizeBytes,
      () => this.linkRef(holder.binding, receiver.name, claim),
      () => {
        if (holder.binding) this.bindings.delete(holder.binding);
      },
    );
    holder.binding = this.bind(
      receiver,
      segments,
      "Send",
      claim,
      () => producer.forget(),
      (c, d) => producer.detach(c, d),
    );
    this.env.context.log.append({
      kind: "linkAttached",
      role: "send",
      entityPath: resolved.queue.name,
      link: this.linkRef(holder.binding, receiver.name, claim),
    });
    producer.start();
  }

  private onRequest(context: EventContext, handle: (request: NonNullable<EventContext["message"]>) => Response): void {
    const request = context.message;
    context.delivery?.accept();
    if (request) this.replies.reply(request, handle(request));
  }

  private putToken(request: NonNullable<EventContext["message"]>): Response {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    const audience = String(props["name"] ?? "");
    let response: Response;
    let claim: AudienceClaim["claim"] | undefined;
    if (props["operation"] !== "put-token") {
      response = { status: 400, condition: "amqp:not-implemented", description: `Unsupported CBS operation '${String(props["operation"])}'.` };
    } else if (props["type"] !== SAS_TOKEN_TYPE) {
      response = { status: 401, condition: "amqp:unauthorized-access", description: `InvalidToken: the emulator accepts only '${SAS_TOKEN_TYPE}' tokens.` };
    } else {
      const check = checkSasToken(String(request.body), audience, {
        rules: this.env.rules,
        nowMs: this.env.context.clock.now(),
        hosts: this.env.hosts,
      });
      const target = parseResourceUri(audience);
      if (check.ok && target) {
        claim = check.claim;
        this.claims.put(target.segments, audience, claim);
        response = { status: 202, description: "Accepted" };
      } else {
        response = { status: 401, condition: "amqp:unauthorized-access", description: check.ok ? "InvalidAudience" : check.description };
      }
    }
    this.env.context.log.append({
      kind: "putToken",
      connectionId: this.id,
      audience,
      status: response.status,
      description: response.description,
      ruleName: claim?.ruleName,
      scopeUri: claim?.scopeUri,
    });
    return response;
  }

  private requireClaim(l: link, segments: readonly string[], right: AccessRight | undefined): AudienceClaim | undefined {
    const claim = this.claims.authorize(segments, right, this.env.context.clock.now());
    if (claim) return claim;
    const needed = right === undefined ? "A token for this resource is" : `'${right}' claim(s) are`;
    this.refuse(
      l,
      segments.join("/"),
      "amqp:unauthorized-access",
      `Unauthorized access. ${needed} required to perform this operation. Resource: '${this.resourceUri(segments)}'.`,
    );
    return undefined;
  }

  private refuse(l: link, address: string, condition: string, description: string): void {
    this.env.context.log.append({ kind: "linkRefused", connectionId: this.id, linkName: l.name, address, condition, description });
    refuseLink(l, { condition, description });
  }

  private bind(
    l: link,
    segments: readonly string[],
    right: AccessRight | undefined,
    claim: AudienceClaim,
    forget: () => void,
    detach?: (condition: string, description: string) => void,
  ): Binding {
    const binding: Binding = {
      link: l,
      segments,
      right,
      address: segments.join("/"),
      linkName: l.name,
      claim,
      forget,
      detach: detach ?? ((condition, description) => l.close({ condition, description })),
    };
    this.bindings.add(binding);
    return binding;
  }

  private linkRef(binding: Binding | undefined, linkName: string, fallback: AudienceClaim): LinkRef {
    const bound = binding?.claim ?? fallback;
    // A put-token for the same audience replaces the claim the link was opened with: report the current one.
    const claim = (this.claims.get(bound.key) ?? bound).claim;
    const authorizedBy: AuthorizedBy = { ruleName: claim.ruleName, scopeUri: claim.scopeUri, tokenExpiresAt: claim.expiresAtMs };
    return { connectionId: this.id, linkName, authorizedBy };
  }

  private resourceUri(segments: readonly string[]): string {
    return `sb://${this.env.namespaceHost}/${segments.join("/")}`;
  }

  private dispose(): void {
    if (this.gone) return;
    this.gone = true;
    for (const binding of this.bindings) binding.forget();
    this.bindings.clear();
    this.onGone();
  }
}

function targetOf(l: link): { address: string } | undefined {
  const address = l.target?.address;
  return typeof address === "string" ? { address } : undefined;
}

function sourceOf(l: link): { address: string } | undefined {
  const address = l.source?.address;
  return typeof address === "string" ? { address } : undefined;
}
