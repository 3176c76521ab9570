/**
 * A Kubernetes API server stand-in for the slice the onboarding service uses: Secrets (bootstrap tokens), cluster RBAC,
 * Nodes. The service's real KubeClient talks to it over HTTPS with a bearer token and the cluster CA, as it would to
 * AKS. It also plays the kubelet's side of TLS bootstrap (`joinNode`), so a test can prove that the token and RBAC the
 * service set up are enough for a node to join, and no more.
 *
 * Request pipeline, in the API server's order: injected fault -> authentication (401) -> route (404/405) ->
 * authorization (403) -> decode (400) -> validate (422) -> storage (404/409).
 */
import { randomUUID } from "node:crypto";
import { FaultInjector, WallClock, type Clock } from "../support/index.js";
import { authenticateBootstrapToken, type UserInfo } from "./bootstrap-tokens.js";
import { clusterRoleBindingView, clusterRoleView, nodeView, secretView, type JoinRecord, type KubeInspection, type NodeView } from "./inspector.js";
import { listenHttps, type Listening, type WireRequest, type WireResponse } from "./https-listener.js";
import { Nodes, type NodeRegistration } from "./nodes.js";
import { ObjectStore, Revisions } from "./object-store.js";
import { authorize, MASTERS_GROUP } from "./rbac-authorizer.js";
import { Rbac, RBAC_GROUP } from "./rbac.js";
import { KubeRequestLog, redactBody, type KubeRequestLogEntry } from "./request-log.js";
import { Router, type Routed } from "./router.js";
import { Secrets } from "./secrets.js";
import { defaultReason, KubeStatusError, statusErrors } from "./status.js";
import { isDnsSubdomain } from "./validation.js";

export interface KubeEmulatorOptions {
  /** Drives token expiry and timestamps. Defaults to the wall clock. */
  clock?: Clock;
  /** Bearer tokens accepted as cluster admins (`system:masters`), e.g. the AKS admin kubeconfig's token. */
  tokens?: readonly string[];
  /** Namespaces besides default, kube-system, kube-public and kube-node-lease. */
  namespaces?: readonly string[];
  /** How injected latency is waited out. Defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  newUid?: () => string;
}

export type RunningKubeEmulator = Listening;

export type JoinResult = { joined: true; node: NodeView } | { joined: false; reason: string };

const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
const ADMIN: UserInfo = { username: "clusterAdmin", groups: [MASTERS_GROUP] };
const AUTHENTICATED = "system:authenticated";

export class KubeEmulator {
  private entra: { serverAppId: string; admins: Set<string> } | undefined;
  readonly clock: Clock;
  readonly requests = new KubeRequestLog();
  /** `faults.inject({ method, path, status | latencyMs | drop, times, code (the Status reason), message, retryAfterSeconds })`. */
  readonly faults = new FaultInjector();

  private readonly tokens = new Map<string, UserInfo>();
  private readonly namespaces: Set<string>;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly revisions = new Revisions();
  private readonly secrets: Secrets;
  private readonly secretStore: ObjectStore;
  private readonly roleStore: ObjectStore;
  private readonly bindingStore: ObjectStore;
  private readonly nodeStore: ObjectStore;
  private readonly rbac: Rbac;
  private readonly nodes: Nodes;
  private readonly router: Router;
  private readonly listeners = new Set<Listening>();
  private joins: JoinRecord[] = [];
  private seq = 0;

  constructor(options: KubeEmulatorOptions = {}) {
    this.clock = options.clock ?? new WallClock();
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.namespaces = new Set([...SYSTEM_NAMESPACES, ...(options.namespaces ?? [])]);
    const newUid = options.newUid ?? randomUUID;
    const store = () => new ObjectStore(this.revisions, this.clock, newUid);
    this.secretStore = store();
    this.roleStore = store();
    this.bindingStore = store();
    this.nodeStore = store();
    this.secrets = new Secrets(this.secretStore, this.revisions, (ns) => this.namespaces.has(ns));
    this.rbac = new Rbac(this.roleStore, this.bindingStore, this.revisions);
    this.nodes = new Nodes(this.nodeStore, this.revisions, this.clock);
    this.router = new Router([
      { apiPrefix: "/api/v1", type: this.secrets },
      { apiPrefix: "/api/v1", type: this.nodes },
      { apiPrefix: `/apis/${RBAC_GROUP}/v1`, type: this.rbac.clusterRoles },
      { apiPrefix: `/apis/${RBAC_GROUP}/v1`, type: this.rbac.clusterRoleBindings },
    ]);
    for (const token of options.tokens ?? []) this.addToken(token);
  }

  /** Serves HTTPS on 127.0.0.1:<ephemeral>; close the returned handle (or call stop()) when done. */
  async start(): Promise<RunningKubeEmulator> {
    const listening = await listenHttps((request) => this.handle(request));
    const tracked: Listening = {
      ...listening,
      close: async () => {
        this.listeners.delete(tracked);
        await listening.close();
      },
    };
    this.listeners.add(tracked);
    return tracked;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.listeners].map((l) => l.close()));
  }

  // ---- fixtures and hooks -----------------------------------------------------------------------------------------

  /** Accepts `token` as a bearer token; by default as a cluster admin (`system:masters`). */
  addToken(token: string, user: UserInfo = ADMIN): void {
    if (token === "") throw new RangeError("empty token");
    this.tokens.set(token, { username: user.username, groups: [...user.groups] });
  }

  /**
   * AKS with Entra ID integration and local accounts disabled: bearer JWTs issued for the AKS server application
   * (`aud` = its app id) authenticate as the token's object id; the listed object ids are cluster admins (as an
   * *Azure Kubernetes Service RBAC Cluster Admin* assignment would make them). Signatures are not checked (the
   * emulator's tokens are unsigned); audience and expiry are.
   */
  trustEntra(options: { serverAppId: string; admins: readonly string[] }): void {
    this.entra = { serverAppId: options.serverAppId.toLowerCase(), admins: new Set(options.admins.map((a) => a.toLowerCase())) };
  }

  /**
   * The API server's periodic etcd compaction (every 5 minutes by default): list pages begun before the last write
   * expire, so a paging client must start its list again (or accept an inconsistent rest).
   */
  compact(): void {
    this.revisions.compact();
  }

  removeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** The groups the bootstrap token authenticator gives this token now, or undefined when it does not authenticate. */
  authenticateBootstrapToken(token: string): string[] | undefined {
    return this.bootstrapUser(token)?.groups;
  }

  /**
   * What a kubelet's TLS bootstrap achieves with `bootstrapToken`: its CSR may be created (some ClusterRoleBinding
   * grants the token's user or groups `system:node-bootstrapper`'s permission) and is auto-approved (the `nodeclient`
   * permission), so the kubelet gets a `system:node:<name>` certificate and registers a Ready Node.
   */
  joinNode(name: string, options: { bootstrapToken: string } & NodeRegistration): JoinResult {
    const user = this.bootstrapUser(options.bootstrapToken);
    if (!user)
      return { joined: false, reason: "the bootstrap token does not authenticate (no such token Secret, wrong secret, expired, or not for authentication)" };
    const subject = { ...user, groups: [...user.groups, AUTHENTICATED] };
    const csr = { verb: "create", apiGroup: "certificates.k8s.io", resource: "certificatesigningrequests" };
    if (!authorize(subject, csr, this.rbac)) {
      return {
        joined: false,
        reason: `${user.username} (groups ${user.groups.join(", ")}) may not create CertificateSigningRequests: no ClusterRoleBinding grants system:node-bootstrapper`,
      };
    }
    if (!authorize(subject, { ...csr, resource: "certificatesigningrequests/nodeclient" }, this.rbac)) {
      return {
        joined: false,
        reason: `the node-client CSR of ${user.username} stays Pending: no ClusterRoleBinding grants certificatesigningrequests/nodeclient (auto-approval)`,
      };
    }
    if (!isDnsSubdomain(name)) return { joined: false, reason: `${name} is not a valid node name (RFC 1123 subdomain)` };
    const node = this.nodes.register(name, options);
    this.joins.push({ node: name, tokenId: user.username.slice("system:bootstrap:".length), groups: user.groups, at: this.clock.now() });
    return { joined: true, node: nodeView(node) };
  }

  /**
   * What a kubelet with `rotateCertificates` does before its client certificate expires: a CSR as `system:node:<name>`
   * (groups `system:nodes`), which kube-controller-manager's approver signs only when some binding grants the
   * requester `certificatesigningrequests/selfnodeclient` (upstream ships the ClusterRole but no binding for it).
   * Without one the CSR stays Pending and the node goes NotReady when its certificate runs out.
   */
  renewNodeClientCertificate(name: string): { renewed: true } | { renewed: false; reason: string } {
    if (!this.nodeStore.get(undefined, name)) return { renewed: false, reason: `no Node ${name}: only a joined kubelet holds a certificate to renew` };
    const subject = { username: `system:node:${name}`, groups: ["system:nodes", AUTHENTICATED] };
    const csr = { verb: "create", apiGroup: "certificates.k8s.io", resource: "certificatesigningrequests/selfnodeclient" };
    if (authorize(subject, csr, this.rbac)) return { renewed: true };
    return {
      renewed: false,
      reason: `the renewal CSR of system:node:${name} stays Pending: no ClusterRoleBinding grants certificatesigningrequests/selfnodeclient`,
    };
  }

  /** The kubelet reporting Ready (true), NotReady (false), or the node controller marking it Unknown. */
  setNodeReady(name: string, ready: boolean | "Unknown"): void {
    this.nodes.setReady(name, ready === "Unknown" ? "Unknown" : ready ? "True" : "False");
  }

  inspect(): KubeInspection {
    return {
      secrets: this.secretStore.list().map(secretView),
      clusterRoles: this.roleStore.list().map(clusterRoleView),
      clusterRoleBindings: this.bindingStore.list().map(clusterRoleBindingView),
      nodes: this.nodeStore.list().map(nodeView),
      joins: structuredClone(this.joins),
    };
  }

  /** Forgets Secrets, Nodes, non-built-in RBAC, joins, the request log and faults. Tokens and namespaces stay. */
  reset(): void {
    this.secretStore.clear();
    this.nodeStore.clear();
    this.rbac.reset();
    this.joins = [];
    this.requests.clear();
    this.faults.clear();
    this.seq = 0;
  }

  // ---- request pipeline -------------------------------------------------------------------------------------------

  async handle(request: WireRequest): Promise<WireResponse> {
    const method = request.method.toUpperCase();
    const [rawPath = "/", rawQuery = ""] = request.target.split("?", 2);
    const query = new URLSearchParams(rawQuery);
    const segments = rawPath
      .split("/")
      .filter((s) => s !== "")
      .map(decodeSegment);
    const entry: KubeRequestLogEntry = {
      seq: ++this.seq,
      at: this.clock.now(),
      method,
      path: `/${segments.join("/")}`,
      query: Object.fromEntries(query),
      route: undefined,
      user: undefined,
      status: 0,
      reason: undefined,
      faulted: undefined,
      body: undefined,
    };
    const response = await this.respond(method, segments, query, request, entry);
    entry.status = response.drop ? 0 : response.status;
    this.requests.append(entry);
    return response;
  }

  private async respond(method: string, segments: string[], query: URLSearchParams, request: WireRequest, entry: KubeRequestLogEntry): Promise<WireResponse> {
    const fault = this.faults.take(method, entry.path);
    if (fault?.latencyMs !== undefined) {
      entry.faulted = "latency";
      await this.sleep(fault.latencyMs);
    }
    if (fault?.drop) {
      entry.faulted = "drop";
      return { status: 0, drop: true };
    }
    if (fault?.status !== undefined) {
      entry.faulted = "status";
      const error = new KubeStatusError(fault.status, fault.code ?? defaultReason(fault.status), fault.message ?? `injected fault ${fault.status}`);
      const headers: Record<string, string> = fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) };
      return this.failure(error, entry, headers);
    }
    try {
      const user = this.authenticate(request.headers["authorization"]);
      entry.user = user.username;
      const routed = this.router.route(method, segments);
      entry.route = routed.route;
      this.authorizeRequest(user, routed);
      const body = parseJson(request.body);
      entry.body = redactBody(body);
      const result = routed.type.handle({ ...routed.request, body, query });
      return { status: result.status, body: result.body };
    } catch (error) {
      if (error instanceof KubeStatusError) return this.failure(error, entry);
      throw error;
    }
  }

  private failure(error: KubeStatusError, entry: KubeRequestLogEntry, headers: Record<string, string> = {}): WireResponse {
    entry.reason = error.reason;
    return { status: error.code, headers, body: error.toStatus() };
  }

  private authenticate(header: string | undefined): UserInfo {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
    if (token === undefined) throw statusErrors.unauthorized();
    const user = this.tokens.get(token) ?? this.bootstrapUser(token) ?? this.entraUser(token);
    if (!user) throw statusErrors.unauthorized();
    return { username: user.username, groups: [...user.groups, AUTHENTICATED] };
  }

  private authorizeRequest(user: UserInfo, routed: Routed): void {
    const { type, request } = routed;
    const attributes = { verb: request.verb, apiGroup: type.resource.group, resource: type.resource.resource, name: request.name };
    if (!authorize(user, attributes, this.rbac)) throw statusErrors.forbidden(user.username, request.verb, type.resource, request.namespace);
  }

  private entraUser(token: string): UserInfo | undefined {
    if (!this.entra) return undefined;
    const payload = /^[^.\s]+\.([^.\s]+)\.\S*$/.exec(token)?.[1];
    if (!payload) return undefined;
    let claims: { aud?: unknown; oid?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims;
    } catch {
      return undefined;
    }
    if (typeof claims.aud !== "string" || claims.aud.toLowerCase() !== this.entra.serverAppId) return undefined;
    if (typeof claims.exp !== "number" || claims.exp * 1000 <= this.clock.now() || typeof claims.oid !== "string") return undefined;
    const oid = claims.oid.toLowerCase();
    return { username: oid, groups: this.entra.admins.has(oid) ? [...ADMIN.groups] : [] };
  }

  private bootstrapUser(token: string): UserInfo | undefined {
    return authenticateBootstrapToken(token, (id) => this.secrets.tokenSecret(id), this.clock.now());
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw statusErrors.badRequest(`the request body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}
