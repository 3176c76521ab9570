/**
 * A Service Bus namespace on 127.0.0.1 that the unmodified `@azure/service-bus` SDK talks to: AMQP 1.0 with CBS
 * (SAS validated: signature, expiry, resource scope, rights), queues with peek-lock, dead-lettering, scheduling and
 * TTL, `$management`, and the ATOM administration API, all on one port. See README.md for usage.
 */
import http from "node:http";
import { createSecureContext } from "node:tls";
import { caIssuedCertificate, WallClock, type Clock } from "../support/index.js";
import { AccessRules, DEFAULT_RULE, grants, type SharedAccessRule } from "./access-rules.js";
import { AdminApi } from "./admin-api.js";
import { AmqpServer } from "./amqp-server.js";
import { DeliveryLog } from "./delivery-log.js";
import { EmulatorInspector } from "./inspector.js";
import { PortListener } from "./port-listener.js";
import { QueueRegistry } from "./queue-registry.js";
import { DEFAULT_QUEUE_SETTINGS, queueDefinitionSchema, settingsFromDefinition, type QueueDefinition } from "./queue-settings.js";

export interface ServiceBusEmulatorOptions {
  /**
   * The namespace's host name, e.g. `flexnode.servicebus.windows.net`: accepted in token audiences (besides
   * 127.0.0.1, ::1 and localhost) and added to the TLS certificate. Default `localhost`.
   */
  namespace?: string;
  /** Namespace-level shared access rules. Default: RootManageSharedAccessKey / SAS_KEY_VALUE with Manage. */
  rules?: readonly SharedAccessRule[];
  /** Queues that exist from the start, and again after `reset()`. */
  queues?: readonly QueueDefinition[];
  /** Drives token expiry, message TTL, schedules and enqueue times. Locks always run on wall time. */
  clock?: Clock;
  /** Queues the namespace may hold; creating one more answers 403 (SubCode 40300). Default 10,000, the Basic/Standard quota (queues and topics). */
  maxQueues?: number;
  /** Largest message (or batch) a sender may transfer. Default 256 KiB, the Standard tier's limit. */
  maxMessageSizeBytes?: number;
  /** How often time-based state (locks, schedules, TTL, token expiry) is applied. Default 20 ms. */
  sweepIntervalMs?: number;
  /** Delivery log entries kept (oldest dropped first). Default 100 000. */
  maxLogEntries?: number;
}

export interface StartOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
}

export interface RunningEmulator {
  host: string;
  port: number;
  /** `sb://<host>:<port>` */
  endpoint: string;
  /** `Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…;UseDevelopmentEmulator=true` for a rule (default: the first with Manage). */
  connectionString(ruleName?: string): string;
  /**
   * The `fullyQualifiedNamespace` to give `new ServiceBusClient(ns, credential)` so it connects over plain TCP like
   * a connection string with `UseDevelopmentEmulator=true` does. It relies on how @azure/service-bus 7.9.5 builds its
   * internal connection string from this argument; see README.md ("SAS credentials").
   */
  credentialNamespace: string;
  /** `host:port`: what a client that uses TLS (no emulator flag) connects to; trust `ca` for it. */
  tlsNamespace: string;
  /** PEM of the CA that signed the port's TLS certificate. */
  ca: string;
  /** Options for `new ServiceBusAdministrationClient(connectionString, options)`: it calls https://<host>:<port>/. */
  adminClientOptions(): { tlsOptions: { ca: string } };
}

const LOOPBACK_HOSTS = ["127.0.0.1", "::1", "localhost"];

export class ServiceBusEmulator {
  readonly log: DeliveryLog;
  readonly inspect: EmulatorInspector;
  readonly rules: AccessRules;
  readonly clock: Clock;
  readonly namespace: string;
  private readonly registry: QueueRegistry;
  private readonly amqp: AmqpServer;
  private readonly admin: AdminApi;

  /** Faults injected into the management (ATOM) API. */
  get adminFaults(): AdminApi["faults"] {
    return this.admin.faults;
  }

  /** AMQP connections open now: what the namespace's connection quota (5,000 on Basic/Standard) counts. */
  get connectionCount(): number {
    return this.amqp.connectionCount;
  }
  private readonly initialQueues: readonly QueueDefinition[];
  private readonly sweepIntervalMs: number;
  private listener: PortListener | undefined;
  private httpServer: http.Server | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private running: RunningEmulator | undefined;

  constructor(options: ServiceBusEmulatorOptions = {}) {
    this.clock = options.clock ?? new WallClock();
    this.namespace = (options.namespace ?? "localhost").toLowerCase();
    this.rules = new AccessRules(options.rules ?? [DEFAULT_RULE]);
    this.log = new DeliveryLog(() => this.clock.now(), options.maxLogEntries);
    this.sweepIntervalMs = options.sweepIntervalMs ?? 20;
    const context = { clock: this.clock, log: this.log, wallNow: () => Date.now() };
    this.registry = new QueueRegistry(context);
    this.inspect = new EmulatorInspector(this.registry);
    const hosts = new Set([this.namespace, ...LOOPBACK_HOSTS]);
    this.amqp = new AmqpServer({
      registry: this.registry,
      context,
      rules: this.rules,
      hosts,
      namespaceHost: this.namespace,
      maxMessageSizeBytes: options.maxMessageSizeBytes ?? 256 * 1024,
    });
    this.admin = new AdminApi({
      registry: this.registry,
      rules: this.rules,
      hosts,
      clock: this.clock,
      namespaceHost: this.namespace,
      defaults: DEFAULT_QUEUE_SETTINGS,
      maxQueues: options.maxQueues ?? 10_000,
    });
    this.initialQueues = options.queues ?? [];
    for (const definition of this.initialQueues) this.createQueue(definition);
  }

  async start(options: StartOptions = {}): Promise<RunningEmulator> {
    if (this.running) throw new Error("the emulator is already running");
    const host = options.host ?? "127.0.0.1";
    const certificates = await caIssuedCertificate(this.namespace === "localhost" ? [] : [this.namespace]);
    const httpServer = http.createServer((req, res) => void this.admin.handle(req, res));
    const listener = new PortListener(
      { amqp: (stream) => this.amqp.accept(stream), http: (stream) => httpServer.emit("connection", stream) },
      createSecureContext({ cert: certificates.cert, key: certificates.key }),
    );
    const port = await listener.listen(host, options.port ?? 0);
    this.listener = listener;
    this.httpServer = httpServer;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepIntervalMs);
    this.sweepTimer.unref();
    const hostPort = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    const rules = this.rules;
    this.running = {
      host,
      port,
      endpoint: `sb://${hostPort}`,
      connectionString(ruleName?: string) {
        const rule = ruleName === undefined ? (rules.all.find((r) => grants(r.rights, "Manage")) ?? rules.all[0]!) : rules.get(ruleName);
        return `Endpoint=sb://${hostPort};SharedAccessKeyName=${rule.name};SharedAccessKey=${rule.key};UseDevelopmentEmulator=true`;
      },
      credentialNamespace: `${hostPort}/;UseDevelopmentEmulator=true;_=`,
      tlsNamespace: hostPort,
      ca: certificates.ca,
      adminClientOptions: () => ({ tlsOptions: { ca: certificates.ca } }),
    };
    return this.running;
  }

  /** Closes every connection (clients see `amqp:connection:forced`) and the port. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.amqp.closeAll();
    // Let the close frames reach the sockets before they are destroyed.
    await new Promise((resolve) => setImmediate(resolve));
    this.httpServer?.closeAllConnections();
    await this.listener?.close();
    this.listener = undefined;
    this.httpServer = undefined;
    this.running = undefined;
  }

  get address(): RunningEmulator {
    if (!this.running) throw new Error("the emulator is not running; call start() first");
    return this.running;
  }

  /** Creates a queue (durations in ms or ISO 8601). Throws if the definition is invalid or the queue exists. */
  createQueue(definition: QueueDefinition): void {
    const parsed = queueDefinitionSchema.parse(definition);
    if (!this.registry.create(parsed.name, settingsFromDefinition(parsed))) throw new Error(`queue ${parsed.name} already exists`);
  }

  deleteQueue(name: string): boolean {
    return this.registry.delete(name);
  }

  /** Applies time-based state now (lock expiry, schedules, TTL, token expiry) instead of at the next sweep. */
  sweep(): void {
    this.registry.sweep();
    this.amqp.expireClaims(this.clock.now());
  }

  /** Empties every queue and the log, drops queues created since, and recreates the configured ones. */
  reset(): void {
    const configured = new Set(this.initialQueues.map((q) => q.name.toLowerCase()));
    for (const queue of this.registry.list()) {
      if (configured.has(queue.name.toLowerCase())) queue.clear();
      else this.registry.delete(queue.name);
    }
    for (const definition of this.initialQueues) if (!this.registry.get(definition.name)) this.createQueue(definition);
    this.log.clear();
  }
}
