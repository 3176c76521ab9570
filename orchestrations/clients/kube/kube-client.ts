/**
 * The handful of Kubernetes API calls the onboarding saga makes against a target cluster, on plain HTTPS.
 *
 * Outcomes the saga treats as normal are values, not errors: 404 on read/delete is "absent"/undefined, 409
 * AlreadyExists on create is "exists", and apply reports created/updated/unchanged. Every other non-2xx is a
 * KubeApiError with the Status reason; network errors and timeouts propagate as they are. Nothing is retried here.
 */
import { labelsSatisfied, normaliseSubject, RBAC_GROUP, sameRoleRef, sameRules, sameSubjects, type SubjectSpec } from "./apply-diff.js";
import { KubeApiError, KubeResponseError, statusReason } from "./kube-api-error.js";
import type { KubeTarget } from "./kube-target.js";
import { KubeTransport, type KubeResponse, type RequestOptions } from "./transport.js";
import { ClusterRole, ClusterRoleBinding, Node, NodeList, Secret, SecretList } from "./wire-objects.js";
import type { z } from "zod";

export interface KubeClientOptions {
  /** Deadline for one request, connect to last byte. Default 30 000 ms. */
  timeoutMs?: number;
  /** `limit` for list calls; continuation pages are followed. Default 500. */
  listPageSize?: number;
}

export interface SecretSpec {
  name: string;
  type: string;
  stringData: Record<string, string>;
  labels?: Record<string, string>;
}

export interface SecretView {
  name: string;
  type: string;
  /** Decoded from base64. */
  data: Record<string, string>;
  labels: Record<string, string>;
}

export interface ClusterRoleSpec {
  name: string;
  rules: object[];
  labels?: Record<string, string>;
}

export interface ClusterRoleBindingSpec {
  name: string;
  roleRef: { kind: "ClusterRole"; name: string };
  subjects: SubjectSpec[];
  labels?: Record<string, string>;
}

export interface NodeView {
  name: string;
  labels: Record<string, string>;
  /** The `Ready` condition is `True` (a NotReady or Unknown node, or one without the condition, is not ready). */
  ready: boolean;
}

export type ApplyOutcome = "created" | "updated" | "unchanged";

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PAGE_SIZE = 500;
const RBAC_V1 = `/apis/${RBAC_GROUP}/v1`;

export class KubeClient {
  private readonly transport: KubeTransport;
  private readonly pageSize: number;

  constructor(target: KubeTarget, options: KubeClientOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    this.transport = new KubeTransport(target, timeoutMs);
    this.pageSize = options.listPageSize ?? DEFAULT_PAGE_SIZE;
  }

  // ---- Secrets ----------------------------------------------------------------------------------------------------

  async createSecret(namespace: string, secret: SecretSpec): Promise<"created" | "exists"> {
    const path = `/api/v1/namespaces/${seg(namespace)}/secrets`;
    const res = await this.call("POST", path, {
      body: {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: secret.name, namespace, labels: secret.labels },
        type: secret.type,
        stringData: secret.stringData,
      },
    });
    if (ok(res)) return "created";
    if (isAlreadyExists(res)) return "exists";
    throw KubeApiError.fromResponse("POST", path, res.status, res.body);
  }

  async getSecret(namespace: string, name: string): Promise<SecretView | undefined> {
    const path = `/api/v1/namespaces/${seg(namespace)}/secrets/${seg(name)}`;
    const res = await this.call("GET", path);
    if (res.status === 404) return undefined;
    const secret = expect(Secret, this.success("GET", path, res), "GET", path);
    const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]));
    return { name: secret.metadata.name, type: secret.type ?? "Opaque", data, labels: secret.metadata.labels ?? {} };
  }

  deleteSecret(namespace: string, name: string): Promise<"deleted" | "absent"> {
    return this.delete(`/api/v1/namespaces/${seg(namespace)}/secrets/${seg(name)}`);
  }

  /**
   * Deletes the Secret only if it carries `labels`: for names an owner does not choose alone (a bootstrap token's id
   * can be another node's). Read, then delete under the read's uid, so an object recreated in between is not taken.
   */
  async deleteSecretLabelled(namespace: string, name: string, labels: Record<string, string>): Promise<"deleted" | "absent" | "not-labelled"> {
    const path = `/api/v1/namespaces/${seg(namespace)}/secrets/${seg(name)}`;
    const res = await this.call("GET", path);
    if (res.status === 404) return "absent";
    const live = expect(Secret, this.success("GET", path, res), "GET", path);
    if (!labelsSatisfied(labels, live.metadata.labels)) return "not-labelled";
    return this.delete(path, { uid: live.metadata.uid, resourceVersion: undefined });
  }

  listSecrets(namespace: string, labelSelector: string): Promise<{ name: string; labels: Record<string, string> }[]> {
    return this.list(SecretList, `/api/v1/namespaces/${seg(namespace)}/secrets`, labelSelector);
  }

  // ---- RBAC ---------------------------------------------------------------------------------------------------------

  async applyClusterRole(role: ClusterRoleSpec): Promise<ApplyOutcome> {
    const collection = `${RBAC_V1}/clusterroles`;
    const desired = { apiVersion: `${RBAC_GROUP}/v1`, kind: "ClusterRole", metadata: { name: role.name, labels: role.labels }, rules: role.rules };
    const created = await this.call("POST", collection, { body: desired });
    if (ok(created)) return "created";
    if (!isAlreadyExists(created)) throw KubeApiError.fromResponse("POST", collection, created.status, created.body);

    const path = `${collection}/${seg(role.name)}`;
    const live = await this.getForApply(ClusterRole, path);
    if (sameRules(role.rules, live.rules) && labelsSatisfied(role.labels, live.metadata.labels)) return "unchanged";
    await this.put(path, { ...live, metadata: withLabels(live.metadata, role.labels), rules: role.rules });
    return "updated";
  }

  async applyClusterRoleBinding(binding: ClusterRoleBindingSpec): Promise<ApplyOutcome> {
    const collection = `${RBAC_V1}/clusterrolebindings`;
    const roleRef = { apiGroup: RBAC_GROUP, kind: binding.roleRef.kind, name: binding.roleRef.name };
    const subjects = binding.subjects.map(normaliseSubject);
    const desired = { apiVersion: `${RBAC_GROUP}/v1`, kind: "ClusterRoleBinding", metadata: { name: binding.name, labels: binding.labels }, roleRef, subjects };
    const created = await this.call("POST", collection, { body: desired });
    if (ok(created)) return "created";
    if (!isAlreadyExists(created)) throw KubeApiError.fromResponse("POST", collection, created.status, created.body);

    const path = `${collection}/${seg(binding.name)}`;
    const live = await this.getForApply(ClusterRoleBinding, path);
    if (!sameRoleRef(roleRef, live.roleRef)) {
      // roleRef is immutable (the API server answers 422), so a binding to another role is replaced. The
      // preconditions make the delete fail with 409 rather than remove a binding someone changed meanwhile.
      await this.delete(path, { uid: live.metadata.uid, resourceVersion: live.metadata.resourceVersion });
      const recreated = await this.call("POST", collection, { body: desired });
      if (!ok(recreated)) throw KubeApiError.fromResponse("POST", collection, recreated.status, recreated.body);
      return "updated";
    }
    if (sameSubjects(subjects, live.subjects) && labelsSatisfied(binding.labels, live.metadata.labels)) return "unchanged";
    await this.put(path, { ...live, metadata: withLabels(live.metadata, binding.labels), subjects });
    return "updated";
  }

  deleteClusterRoleBinding(name: string): Promise<"deleted" | "absent"> {
    return this.delete(`${RBAC_V1}/clusterrolebindings/${seg(name)}`);
  }

  // ---- Nodes ----------------------------------------------------------------------------------------------------------

  async getNode(name: string): Promise<NodeView | undefined> {
    const path = `/api/v1/nodes/${seg(name)}`;
    const res = await this.call("GET", path);
    if (res.status === 404) return undefined;
    const node = expect(Node, this.success("GET", path, res), "GET", path);
    const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    return { name: node.metadata.name, labels: node.metadata.labels ?? {}, ready };
  }

  listNodes(labelSelector: string): Promise<{ name: string; labels: Record<string, string> }[]> {
    return this.list(NodeList, "/api/v1/nodes", labelSelector);
  }

  deleteNode(name: string): Promise<"deleted" | "absent"> {
    return this.delete(`/api/v1/nodes/${seg(name)}`);
  }

  /** Releases pooled connections. The client stays usable; later calls open new ones. */
  close(): void {
    this.transport.close();
  }

  // ---- plumbing ---------------------------------------------------------------------------------------------------

  /**
   * Every object of a collection the selector matches, page by page (limit/continue). A continue token outlives etcd's
   * compaction (every 5 minutes) only briefly: on 410 Expired the list is read again whole, without paging, as
   * client-go's pager does (FullListIfExpired), rather than finishing it inconsistently with the token the 410 offers.
   */
  private async list(
    schema: typeof SecretList | typeof NodeList,
    path: string,
    labelSelector: string,
  ): Promise<{ name: string; labels: Record<string, string> }[]> {
    const out: { name: string; labels: Record<string, string> }[] = [];
    let continueToken: string | undefined;
    do {
      const res = await this.call("GET", path, { query: { labelSelector, limit: String(this.pageSize), continue: continueToken } });
      if (continueToken !== undefined && res.status === 410) return this.listWhole(schema, path, labelSelector);
      const page = expect(schema, this.success("GET", path, res), "GET", path);
      for (const item of page.items ?? []) out.push({ name: item.metadata.name, labels: item.metadata.labels ?? {} });
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken !== undefined);
    return out;
  }

  private async listWhole(schema: typeof SecretList | typeof NodeList, path: string, labelSelector: string) {
    const res = await this.call("GET", path, { query: { labelSelector } });
    const all = expect(schema, this.success("GET", path, res), "GET", path);
    return (all.items ?? []).map((item) => ({ name: item.metadata.name, labels: item.metadata.labels ?? {} }));
  }

  private call(method: string, path: string, options?: RequestOptions): Promise<KubeResponse> {
    return this.transport.request(method, path, options);
  }

  private success(method: string, path: string, res: KubeResponse): unknown {
    if (!ok(res)) throw KubeApiError.fromResponse(method, path, res.status, res.body);
    return res.body;
  }

  private async delete(path: string, preconditions?: { uid: string | undefined; resourceVersion: string | undefined }): Promise<"deleted" | "absent"> {
    const body = preconditions ? { apiVersion: "v1", kind: "DeleteOptions", preconditions } : undefined;
    const res = await this.call("DELETE", path, { body });
    if (res.status === 404) return "absent";
    this.success("DELETE", path, res);
    return "deleted";
  }

  /** The live object after a create said AlreadyExists; gone again by now means someone else is changing it. */
  private async getForApply<T extends z.ZodType>(schema: T, path: string): Promise<z.infer<T>> {
    const res = await this.call("GET", path);
    if (res.status === 404) {
      throw new KubeApiError({ status: 409, reason: "Conflict", message: `GET ${path}: deleted after create reported AlreadyExists; apply again` });
    }
    return expect(schema, this.success("GET", path, res), "GET", path);
  }

  /** Update with the live resourceVersion: a concurrent writer makes this fail with 409 Conflict instead of being overwritten. */
  private async put(path: string, body: object): Promise<void> {
    const res = await this.call("PUT", path, { body });
    this.success("PUT", path, res);
  }
}

function ok(res: KubeResponse): boolean {
  return res.status >= 200 && res.status < 300;
}

function isAlreadyExists(res: KubeResponse): boolean {
  return res.status === 409 && statusReason(res.status, res.body) === "AlreadyExists";
}

function seg(value: string): string {
  if (value === "" || value === "." || value === "..") throw new RangeError(`not a usable object name: "${value}"`);
  return encodeURIComponent(value);
}

function withLabels<M extends { labels?: Record<string, string> }>(metadata: M, labels: Record<string, string> | undefined): M {
  return labels === undefined ? metadata : { ...metadata, labels: { ...metadata.labels, ...labels } };
}

function expect<T extends z.ZodType>(schema: T, body: unknown, method: string, path: string): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new KubeResponseError(`${method} ${path}: unexpected response body: ${parsed.error.message.slice(0, 300)}`);
  return parsed.data;
}
