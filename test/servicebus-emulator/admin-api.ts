/**
 * The administration API (ATOM over HTTPS, api-version 2021-05) for queues, as `ServiceBusAdministrationClient`
 * calls it: PUT creates (201; 409 when it exists) or, with `If-Match: *`, updates; GET returns the entry, or 200 with
 * an empty feed when there is none (the SDK turns that into MessageEntityNotFoundError); DELETE returns 200, or 404;
 * `$Resources/Queues` lists with `$skip`/`$top`. Requests are authorized by a SAS token (signed over the lower-cased
 * request URL) from a rule with Manage rights.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { grants, type AccessRules } from "./access-rules.js";
import { emptyFeedDocument, errorDocument, feedDocument, queueEntryDocument, readQueueDescription, type QueueView } from "./atom-xml.js";
import { parseIsoDuration } from "./iso-duration.js";
import type { Queue } from "./queue.js";
import type { QueueRegistry } from "./queue-registry.js";
import { MAX_LOCK_DURATION_MS, MIN_LOCK_DURATION_MS, QUEUE_NAME, type QueueSettings } from "./queue-settings.js";
import { checkSasToken } from "./token-check.js";
import { FaultInjector, readBody as readRequestBody, type Clock } from "../support/index.js";

export interface AdminApiOptions {
  registry: QueueRegistry;
  rules: AccessRules;
  hosts: ReadonlySet<string>;
  clock: Clock;
  namespaceHost: string;
  /** Settings for a queue created without them. */
  defaults: QueueSettings;
  /** Queues the namespace may hold (the entity quota). */
  maxQueues: number;
}

interface AdminResponse {
  status: number;
  body?: string;
  contentType?: string;
}

const ENTRY = "application/atom+xml;type=entry;charset=utf-8";
const FEED = "application/atom+xml;type=feed;charset=utf-8";
const ERROR = "application/xml; charset=utf-8";
const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_PAGE = 100;

const boolText = z.enum(["true", "false"]).transform((v) => v === "true");
const intText = z.string().regex(/^\d+$/).transform(Number);
const durationText = z.string().transform((text, ctx) => {
  const ms = parseIsoDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `'${text}' is not a valid duration` });
    return z.NEVER;
  }
  return ms;
});

/** The QueueDescription fields a create or update may carry; others (AuthorizationRules, counts) are ignored. */
const queueDescriptionSchema = z.object({
  LockDuration: durationText.optional(),
  MaxSizeInMegabytes: intText.optional(),
  RequiresDuplicateDetection: boolText.optional(),
  RequiresSession: boolText.optional(),
  DefaultMessageTimeToLive: durationText.optional(),
  DeadLetteringOnMessageExpiration: boolText.optional(),
  DuplicateDetectionHistoryTimeWindow: durationText.optional(),
  MaxDeliveryCount: intText.optional(),
  EnableBatchedOperations: boolText.optional(),
  Status: z.enum(["Active", "Disabled", "SendDisabled", "ReceiveDisabled"]).optional(),
  ForwardTo: z.string().optional(),
  ForwardDeadLetteredMessagesTo: z.string().optional(),
  UserMetadata: z.string().max(1024).optional(),
  AutoDeleteOnIdle: durationText.optional(),
  EnablePartitioning: boolText.optional(),
  EnableExpress: boolText.optional(),
  MaxMessageSizeInKilobytes: intText.optional(),
});

export class AdminApi {
  /** Injected failures of the management API (status only), e.g. `faults.inject({ method: "PUT", path: "node-*", status: 503 })`. */
  readonly faults = new FaultInjector();

  constructor(private readonly options: AdminApiOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let response: AdminResponse;
    try {
      const body = await readBody(req);
      response = this.route(req, body);
    } catch (error) {
      response = failure(500, `Emulator error: ${error instanceof Error ? error.message : String(error)}`);
    }
    const text = response.body ?? "";
    res.writeHead(response.status, {
      "content-type": response.contentType ?? ERROR,
      "content-length": String(Buffer.byteLength(text)),
      server: "Microsoft-HTTPAPI/2.0",
    });
    res.end(text);
  }

  private route(req: IncomingMessage, body: string): AdminResponse {
    const url = new URL(req.url ?? "/", `https://${req.headers.host ?? this.options.namespaceHost}`);
    const unauthorized = this.authorize(req, url);
    if (unauthorized) return unauthorized;
    const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, "");
    const method = (req.method ?? "GET").toUpperCase();
    const fault = this.faults.take(method, path);
    // A fault's message is the service's detail as given (e.g. "SubCode=40901. …"), which the SDK maps to its error codes.
    if (fault?.status !== undefined) return failure(fault.status, fault.message ?? `SubCode=50000. Injected fault (${fault.code ?? "ServerBusy"}).`);
    if (path.toLowerCase() === "$resources/queues" && method === "GET") return this.list(url);
    if (path === "" || path.startsWith("$") || /\/subscriptions(\/|$)/i.test(path)) {
      return failure(400, `SubCode=40000. The emulator serves queues only; '${path}' is not supported.`);
    }
    if (!QUEUE_NAME.test(path) || path.length > 260) return failure(400, `SubCode=40000. Invalid entity name '${path}'.`);
    switch (method) {
      case "PUT":
        return this.put(path, url, body, req.headers["if-match"] === "*");
      case "GET":
        return this.get(path, url);
      case "DELETE":
        return this.options.registry.delete(path) ? { status: 200 } : failure(404, this.notFoundDetail(path));
      default:
        return failure(405, `The method '${method}' is not allowed.`);
    }
  }

  private authorize(req: IncomingMessage, url: URL): AdminResponse | undefined {
    const header = req.headers.authorization;
    if (!header) return failure(401, "MissingToken: The request contains no authorization header.");
    const check = checkSasToken(header, url.toString(), { rules: this.options.rules, nowMs: this.options.clock.now(), hosts: this.options.hosts });
    if (!check.ok) return failure(401, check.description);
    if (!grants(check.claim.rights, "Manage")) return failure(401, "Unauthorized access. 'Manage' claim(s) are required to perform this operation.");
    return undefined;
  }

  private put(name: string, url: URL, body: string, isUpdate: boolean): AdminResponse {
    const fields = readQueueDescription(body);
    if (!fields) return failure(400, "SubCode=40000. The request body is not a QueueDescription entry.");
    const parsed = queueDescriptionSchema.safeParse(fields);
    if (!parsed.success) return failure(400, `SubCode=40000. ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    const d = parsed.data;
    if (d.RequiresSession) return failure(400, "SubCode=40000. The emulator does not support sessions; use one queue per receiver instead.");
    if (d.ForwardTo || d.ForwardDeadLetteredMessagesTo) return failure(400, "SubCode=40000. The emulator does not support auto-forwarding.");
    if (d.LockDuration !== undefined && (d.LockDuration < MIN_LOCK_DURATION_MS || d.LockDuration > MAX_LOCK_DURATION_MS)) {
      return failure(400, "SubCode=40000. The supplied lock time exceeds the allowed maximum of '5' minutes (or is below the emulator's 100 ms minimum).");
    }
    if (d.MaxDeliveryCount !== undefined && d.MaxDeliveryCount < 1) return failure(400, "SubCode=40000. MaxDeliveryCount must be at least 1.");
    const existing = this.options.registry.get(name);
    if (isUpdate && !existing) return failure(404, this.notFoundDetail(name));
    if (!isUpdate && existing) return failure(409, `SubCode=40900. The messaging entity '${this.entityRef(name)}' already exists.`);
    const base = existing?.settings ?? this.options.defaults;
    const settings: QueueSettings = {
      ...base,
      lockDurationMs: d.LockDuration ?? base.lockDurationMs,
      maxSizeInMegabytes: d.MaxSizeInMegabytes ?? base.maxSizeInMegabytes,
      requiresDuplicateDetection: d.RequiresDuplicateDetection ?? base.requiresDuplicateDetection,
      defaultMessageTimeToLiveMs: d.DefaultMessageTimeToLive ?? base.defaultMessageTimeToLiveMs,
      deadLetteringOnMessageExpiration: d.DeadLetteringOnMessageExpiration ?? base.deadLetteringOnMessageExpiration,
      duplicateDetectionHistoryTimeWindowMs: d.DuplicateDetectionHistoryTimeWindow ?? base.duplicateDetectionHistoryTimeWindowMs,
      maxDeliveryCount: d.MaxDeliveryCount ?? base.maxDeliveryCount,
      enableBatchedOperations: d.EnableBatchedOperations ?? base.enableBatchedOperations,
      status: d.Status ?? base.status,
      userMetadata: d.UserMetadata ?? base.userMetadata,
      autoDeleteOnIdleMs: d.AutoDeleteOnIdle ?? base.autoDeleteOnIdleMs,
      enablePartitioning: d.EnablePartitioning ?? base.enablePartitioning,
      enableExpress: d.EnableExpress ?? base.enableExpress,
      maxMessageSizeInKilobytes: d.MaxMessageSizeInKilobytes ?? base.maxMessageSizeInKilobytes,
    };
    if (existing) {
      existing.settings = settings;
      existing.updatedAt = this.options.clock.now();
      return { status: 200, body: queueEntryDocument(this.view(existing, url)), contentType: ENTRY };
    }
    const count = this.options.registry.list().length;
    if (count >= this.options.maxQueues) {
      // The service's wording for an entity quota (seen for partitioned entities: "The maximum number of resources of type
      // EnablePartitioning == true has been reached or exceeded. Actual: 100, Max allowed: 100"); the SDK maps 403 to QuotaExceededError.
      return failure(
        403,
        `SubCode=40300. The maximum number of resources of type Queue has been reached or exceeded. Actual: ${count}, Max allowed: ${this.options.maxQueues}.`,
      );
    }
    const created = this.options.registry.create(name, settings)!;
    return { status: 201, body: queueEntryDocument(this.view(created, url)), contentType: ENTRY };
  }

  private get(name: string, url: URL): AdminResponse {
    const queue = this.options.registry.get(name);
    if (!queue) return { status: 200, body: emptyFeedDocument(url.toString(), this.options.clock.now()), contentType: FEED };
    return { status: 200, body: queueEntryDocument(this.view(queue, url)), contentType: ENTRY };
  }

  private list(url: URL): AdminResponse {
    const skip = Number(url.searchParams.get("$skip") ?? 0) || 0;
    const top = Number(url.searchParams.get("$top") ?? DEFAULT_PAGE) || DEFAULT_PAGE;
    const all = this.options.registry.list();
    const page = all.slice(skip, skip + top);
    let nextUrl: string | undefined;
    if (skip + top < all.length) {
      const next = new URL(url.toString());
      next.searchParams.set("$skip", String(skip + top));
      next.searchParams.set("$top", String(top));
      nextUrl = next.toString();
    }
    const entries = page.map((queue) => this.view(queue, new URL(`/${encodeURIComponent(queue.name)}?api-version=2021-05`, url)));
    return {
      status: 200,
      body: feedDocument({ title: "Queues", selfUrl: url.toString(), nextUrl, entries, now: this.options.clock.now() }),
      contentType: FEED,
    };
  }

  private view(queue: Queue, url: URL): QueueView {
    const counts = queue.counts();
    const entryUrl = new URL(url.toString());
    entryUrl.pathname = `/${queue.name}`;
    return {
      name: queue.name,
      url: entryUrl.toString(),
      author: this.options.namespaceHost,
      settings: queue.settings,
      createdAt: queue.createdAt,
      updatedAt: queue.updatedAt,
      accessedAt: queue.updatedAt,
      sizeInBytes: queue.sizeInBytes(),
      counts: { active: counts.active + counts.deferred, deadLettered: counts.deadLettered, scheduled: counts.scheduled },
    };
  }

  private entityRef(name: string): string {
    return `${this.options.namespaceHost}:Queue:${name}`;
  }

  private notFoundDetail(name: string): string {
    return `The messaging entity '${this.entityRef(name)}' could not be found. To know more visit https://aka.ms/sbResourceMgrExceptions.`;
  }
}

function failure(status: number, detail: string): AdminResponse {
  return { status, body: errorDocument(status, detail), contentType: ERROR };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const body = await readRequestBody(req, MAX_BODY_BYTES);
  if (body === undefined) throw new Error("request body too large");
  return body.toString("utf8");
}
