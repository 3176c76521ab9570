/**
 * `/api/v1/namespaces/{ns}/secrets`: create, get, list, delete. Data is stored base64 as served; `stringData` is
 * merged into `data` on create (winning on conflicts) and never stored, as the API server does. Bootstrap-token
 * Secrets are additionally checked for a usable token (see bootstrap-tokens.ts for why that is stricter than real).
 */
import { bootstrapSecretProblems, BOOTSTRAP_TOKEN_TYPE, type TokenSecret } from "./bootstrap-tokens.js";
import type { KubeObject, ObjectStore, Revisions } from "./object-store.js";
import { checkDeletePreconditions, listResponse, nameForCreate, presentMap } from "./object-writes.js";
import { decode, SecretBody } from "./request-body.js";
import type { HandlerResult, ResourceRequest, ResourceType } from "./resource.js";
import { causes, statusErrors, successStatus, type StatusCause } from "./status.js";
import * as validate from "./validation.js";

const MAX_SECRET_BYTES = 1024 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export class Secrets implements ResourceType {
  readonly resource = { resource: "secrets", group: "" };
  readonly namespaced = true;
  readonly verbs = ["get", "list", "create", "delete"] as const;

  constructor(
    private readonly store: ObjectStore,
    private readonly revisions: Revisions,
    private readonly namespaceExists: (namespace: string) => boolean,
  ) {}

  handle(request: ResourceRequest): HandlerResult {
    const namespace = request.namespace!;
    switch (request.verb) {
      case "list":
        return { status: 200, body: listResponse("Secret", "v1", this.store.list(namespace), request.query, this.revisions) };
      case "get":
        return { status: 200, body: this.require(namespace, request.name!) };
      case "create":
        return { status: 201, body: this.create(namespace, request.body) };
      case "delete": {
        const existing = this.require(namespace, request.name!);
        checkDeletePreconditions(this.resource, existing, request.body);
        this.store.delete(namespace, existing.metadata.name);
        return { status: 200, body: successStatus(this.resource, existing.metadata.name, existing.metadata.uid) };
      }
      default:
        throw statusErrors.methodNotAllowed();
    }
  }

  /** The bootstrap authenticator's view of `kube-system/bootstrap-token-<id>`. */
  tokenSecret(tokenId: string): TokenSecret | undefined {
    const found = this.store.get("kube-system", `bootstrap-token-${tokenId}`);
    if (!found) return undefined;
    return { type: String(found["type"]), data: decodeData(found), deleting: false };
  }

  private create(namespace: string, body: unknown): KubeObject {
    const secret = decode(SecretBody, body, "Secret");
    const name = nameForCreate(secret.metadata, namespace);
    const problems: StatusCause[] = [];
    if (name === undefined) throw statusErrors.invalid("Secret", "", "", [causes.required("metadata.name", "name or generateName is required")]);
    problems.push(...validate.dnsSubdomainName("metadata.name", name), ...validate.labels("metadata.labels", secret.metadata.labels ?? undefined));

    const data: Record<string, string> = {};
    for (const [key, value] of Object.entries(secret.data ?? {})) {
      // A data value that is not base64 fails JSON decoding into []byte on the real server: a 400, not a 422.
      if (!BASE64.test(value)) throw statusErrors.badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data in data[${key}]`);
      data[key] = value;
    }
    for (const [key, value] of Object.entries(secret.stringData ?? {})) data[key] = Buffer.from(value, "utf8").toString("base64");
    for (const key of Object.keys(data)) problems.push(...validate.configKey(`data[${key}]`, key));
    const size = Object.values(data).reduce((sum, v) => sum + Buffer.from(v, "base64").length, 0);
    if (size > MAX_SECRET_BYTES) problems.push(causes.tooLong("data", MAX_SECRET_BYTES));

    const type = secret.type === undefined || secret.type === "" ? "Opaque" : secret.type;
    if (type === BOOTSTRAP_TOKEN_TYPE) problems.push(...bootstrapSecretProblems(namespace, name, decodeMap(data)));
    if (problems.length > 0) throw statusErrors.invalid("Secret", "", name, problems);

    if (!this.namespaceExists(namespace)) throw statusErrors.notFound({ resource: "namespaces", group: "" }, namespace);
    if (this.store.get(namespace, name)) throw statusErrors.alreadyExists(this.resource, name);
    return this.store.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace, labels: presentMap(secret.metadata.labels), annotations: presentMap(secret.metadata.annotations) },
      ...(Object.keys(data).length > 0 ? { data } : {}),
      ...(secret.immutable === undefined ? {} : { immutable: secret.immutable }),
      type,
    });
  }

  private require(namespace: string, name: string): KubeObject {
    const found = this.store.get(namespace, name);
    if (!found) throw statusErrors.notFound(this.resource, name);
    return found;
  }
}

export function decodeData(secret: KubeObject): Record<string, string> {
  return decodeMap((secret["data"] as Record<string, string> | undefined) ?? {});
}

function decodeMap(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}
