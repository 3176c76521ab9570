/**
 * The Table service's REST API over a TableStore, as an `HttpClient` the unmodified `@azure/data-tables` clients take
 * as their transport (`{ httpClient }`): requests are answered in this process, synchronously, with the status codes,
 * headers, error bodies (`odata.error`) and continuation headers of the service. Requests must carry a valid
 * SharedKeyLite signature of the development account, as Azurite checks.
 */
import { createHmac } from "node:crypto";
import { createHttpHeaders, type HttpClient, type PipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import { batchContentType, batchResponse, parseBatch, type BatchAnswer } from "./batch.js";
import { TableError, withRequestId, type Row, type TableStore } from "./store.js";
import { entityJson } from "./values.js";

interface Answer {
  status: number;
  headers: Record<string, string>;
  body?: string;
}

export interface TransportOptions {
  account: string;
  /** The account key (base64). */
  key: string;
}

export function tableTransport(store: TableStore, options: TransportOptions): HttpClient & { requests(): number } {
  let requests = 0;
  const key = Buffer.from(options.key, "base64");
  return {
    requests: () => requests,
    sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      requests++;
      const headers = request.headers.toJSON();
      let answer: Answer;
      try {
        authenticate(request, headers, options.account, key);
        answer = route(store, options.account, request.method, request.url, headers, typeof request.body === "string" ? request.body : "");
      } catch (error) {
        if (!(error instanceof TableError)) throw error;
        answer = errorAnswer(error);
      }
      const responseHeaders = createHttpHeaders({ "x-ms-version": "2019-02-02", ...answer.headers });
      const clientRequestId = headers["x-ms-client-request-id"];
      if (clientRequestId) responseHeaders.set("x-ms-client-request-id", clientRequestId);
      return Promise.resolve({ request, status: answer.status, headers: responseHeaders, ...(answer.body !== undefined ? { bodyAsText: answer.body } : {}) });
    },
  };
}

function authenticate(request: PipelineRequest, headers: Record<string, string>, account: string, key: Buffer): void {
  const url = new URL(request.url);
  const m = /^SharedKeyLite ([^:]+):(.+)$/.exec(headers.authorization ?? "");
  const comp = url.searchParams.get("comp");
  const resource = `/${account}${url.pathname}${comp ? `?comp=${comp}` : ""}`;
  const expected = createHmac("sha256", key)
    .update(`${headers["x-ms-date"] ?? headers.date ?? ""}\n${resource}`)
    .digest("base64");
  if (!m || m[1] !== account || m[2] !== expected)
    throw new TableError(
      403,
      "AuthorizationFailure",
      "Server failed to authenticate the request. Make sure the value of the Authorization header is formed correctly.",
    );
}

function route(store: TableStore, account: string, method: string, rawUrl: string, headers: Record<string, string>, body: string): Answer {
  const url = new URL(rawUrl);
  const path = decodeURIComponent(url.pathname.replace(new RegExp(`^/${account}/`), ""));
  const json = (status: number, value: unknown, extra: Record<string, string> = {}): Answer => ({
    status,
    headers: { "content-type": "application/json;odata=minimalmetadata", ...extra },
    body: JSON.stringify(value),
  });

  if (path === "Tables" && method === "POST") {
    const name = (JSON.parse(body) as { TableName?: unknown }).TableName;
    store.createTable(String(name));
    return json(201, { TableName: name });
  }
  const tableDelete = /^Tables\('(.+)'\)$/.exec(path);
  if (tableDelete && method === "DELETE") {
    store.deleteTable(tableDelete[1]!);
    return { status: 204, headers: {} };
  }
  if (path === "$batch" && method === "POST") return batch(store, account, headers, body);

  const entity = /^([A-Za-z0-9]+)\(PartitionKey='((?:[^']|'')*)',\s*RowKey='((?:[^']|'')*)'\)$/.exec(path);
  if (entity) {
    const [table, pk, rk] = [entity[1]!, unquote(entity[2]!), unquote(entity[3]!)];
    if (method === "GET") {
      const row = store.get(table, pk, rk);
      return json(200, entityJson(row), { etag: row.etag });
    }
    if (method === "DELETE") {
      store.delete(table, pk, rk, headers["if-match"] ?? "*");
      return { status: 204, headers: {} };
    }
    if (method === "PUT" || method === "PATCH" || method === "MERGE") {
      const row = store.update(table, pk, rk, parseBody(body), method !== "PUT", headers["if-match"]);
      return { status: 204, headers: { etag: row.etag } };
    }
  }
  const query = /^([A-Za-z0-9]+)\(\)$/.exec(path);
  if (query && method === "GET") {
    const p = url.searchParams;
    const nextPk = p.get("NextPartitionKey");
    const nextRk = p.get("NextRowKey");
    const page = store.query(query[1]!, {
      ...(p.get("$filter") ? { filter: p.get("$filter")! } : {}),
      ...(p.get("$select")
        ? {
            select: p
              .get("$select")!
              .split(",")
              .map((s) => s.trim()),
          }
        : {}),
      ...(p.get("$top") ? { top: Number(p.get("$top")) } : {}),
      ...(nextPk !== null ? { from: { pk: fromBase64(nextPk), rk: fromBase64(nextRk ?? "") } } : {}),
    });
    const continuation: Record<string, string> = page.next
      ? { "x-ms-continuation-nextpartitionkey": toBase64(page.next.pk), "x-ms-continuation-nextrowkey": toBase64(page.next.rk) }
      : {};
    return json(200, { value: page.rows }, continuation);
  }
  const insert = /^([A-Za-z0-9]+)$/.exec(path);
  if (insert && method === "POST") {
    const entityBody = parseBody(body);
    const row = store.insert(insert[1]!, String(entityBody.PartitionKey ?? ""), String(entityBody.RowKey ?? ""), entityBody);
    return inserted(row, headers.prefer);
  }
  throw new TableError(400, "InvalidInput", `One of the request inputs is not valid. (${method} ${path})`);
}

function inserted(row: Row, prefer: string | undefined): Answer {
  if (prefer === "return-no-content") return { status: 204, headers: { etag: row.etag, "preference-applied": "return-no-content" } };
  return { status: 201, headers: { etag: row.etag, "content-type": "application/json;odata=minimalmetadata" }, body: JSON.stringify(entityJson(row)) };
}

/** An entity-group transaction's request body is at most 4 MiB; Azure and Azurite answer 413 RequestBodyTooLarge. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

function batch(store: TableStore, account: string, headers: Record<string, string>, body: string): Answer {
  // Refused as a whole, before its operations are read: a plain error, not a changeset naming an action.
  if (Buffer.byteLength(body) > MAX_BATCH_BYTES)
    throw new TableError(413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum permissible limit.");
  const { batchBoundary, changesetBoundary, operations } = parseBatch(headers["content-type"] ?? "", body);
  const reply = (answers: BatchAnswer[], failure?: { index: number; error: TableError }): Answer => ({
    status: 202,
    headers: { "content-type": batchContentType(batchBoundary) },
    body: batchResponse(batchBoundary, changesetBoundary, answers, failure),
  });
  if (operations.length === 0 || operations.length > 100)
    return reply([], { index: 0, error: new TableError(400, "InvalidInput", "A changeset holds between 1 and 100 operations.") });
  const keys = operations.map((op) => keyOf(account, op.url, op.body));
  const pk = keys[0]!.pk;
  const differs = keys.findIndex((k) => k.pk !== pk);
  if (differs >= 0)
    return reply([], {
      index: differs,
      error: new TableError(400, "CommandsInBatchActOnDifferentPartitions", "All commands in a batch must operate on same entity group."),
    });
  const duplicate = keys.findIndex((k, i) => keys.findIndex((o) => o.rk === k.rk) !== i);
  if (duplicate >= 0)
    return reply([], {
      index: duplicate,
      error: new TableError(
        400,
        "InvalidDuplicateRow",
        "The batch request contains multiple changes with same row key. An entity can appear only once in a batch request.",
      ),
    });
  let index = 0;
  try {
    const answers = store.atomically(keys[0]!.table, pk, () =>
      operations.map((op, i): BatchAnswer => {
        index = i;
        const a = route(store, account, op.method, op.url, op.headers, op.body);
        if (a.status >= 300) throw new TableError(a.status, "InvalidInput", "One of the request inputs is not valid.");
        const headers: Record<string, string> = a.headers.etag ? { ETag: a.headers.etag } : {};
        return { status: a.status, headers };
      }),
    );
    return reply(answers);
  } catch (error) {
    if (!(error instanceof TableError)) throw error;
    return reply([], { index, error });
  }
}

function keyOf(account: string, url: string, body: string): { table: string; pk: string; rk: string } {
  const path = decodeURIComponent(new URL(url).pathname.replace(new RegExp(`^/${account}/`), ""));
  const entity = /^([A-Za-z0-9]+)\(PartitionKey='((?:[^']|'')*)',\s*RowKey='((?:[^']|'')*)'\)$/.exec(path);
  if (entity) return { table: entity[1]!, pk: unquote(entity[2]!), rk: unquote(entity[3]!) };
  const b = parseBody(body);
  return { table: path, pk: String(b.PartitionKey ?? ""), rk: String(b.RowKey ?? "") };
}

function parseBody(body: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new TableError(400, "InvalidInput", "One of the request inputs is not valid.");
}

function errorAnswer(error: TableError): Answer {
  return {
    status: error.status,
    headers: { "x-ms-error-code": error.code, "content-type": "application/json;odata=minimalmetadata;streaming=true;charset=utf-8" },
    body: JSON.stringify({ "odata.error": { code: error.code, message: { lang: "en-US", value: withRequestId(error.message) } } }),
  };
}

const unquote = (s: string) => s.replace(/''/g, "'");
const toBase64 = (s: string) => Buffer.from(s).toString("base64");
const fromBase64 = (s: string) => Buffer.from(s, "base64").toString();
