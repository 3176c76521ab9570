/**
 * Entity-group transactions (`POST /$batch`): one changeset of up to 100 operations on one partition, all or nothing.
 * The request and the answer are multipart/mixed with an HTTP request or response per part, as the service and
 * Azurite write them; a failure answers 202 with a single part, the failed operation's status and an error whose
 * message starts with its index (`1:The specified entity already exists.`), which callers parse.
 */
import { TableError, withRequestId } from "./store.js";

export interface BatchOperation {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface BatchAnswer {
  status: number;
  headers: Record<string, string>;
}

export function parseBatch(contentType: string, body: string): { batchBoundary: string; changesetBoundary: string; operations: BatchOperation[] } {
  const batchBoundary = boundaryOf(contentType);
  const batchParts = split(body, batchBoundary);
  if (batchParts.length !== 1) throw new TableError(400, "InvalidInput", "A batch holds exactly one changeset.");
  const [changesetHeaders, changesetBody] = headOf(batchParts[0]!);
  const changesetBoundary = boundaryOf(changesetHeaders["content-type"] ?? "");
  const operations = split(changesetBody, changesetBoundary).map((part) => {
    const [, http] = headOf(part);
    const [requestLine, ...rest] = http.split(/\r?\n/);
    const [method, url] = (requestLine ?? "").split(" ");
    const [headers, opBody] = headOf(rest.join("\n"));
    return { method: method!, url: url!, headers, body: opBody.trim() };
  });
  return { batchBoundary, changesetBoundary, operations };
}

export function batchResponse(
  batchBoundary: string,
  changesetBoundary: string,
  answers: BatchAnswer[],
  failure?: { index: number; error: TableError },
): string {
  const batch = `batchresponse_${batchBoundary.replace(/^batch_/, "")}`;
  const changeset = `changesetresponse_${changesetBoundary.replace(/^changeset_/, "")}`;
  const part = (status: number, headers: Record<string, string>, body = "") =>
    `--${changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("") +
    `\r\n${body}\r\n`;
  const parts = failure
    ? [
        part(
          failure.error.status,
          { "Content-ID": String(failure.index + 1), DataServiceVersion: "3.0;", "Content-Type": "application/json;odata=minimalmetadata;charset=utf-8" },
          JSON.stringify({
            "odata.error": { code: failure.error.code, message: { lang: "en-US", value: withRequestId(`${failure.index}:${failure.error.message}`) } },
          }),
        ),
      ]
    : answers.map((a) => part(a.status, { DataServiceVersion: "3.0;", ...a.headers }));
  return `--${batch}\r\nContent-Type: multipart/mixed; boundary=${changeset}\r\n\r\n${parts.join("")}--${changeset}--\r\n--${batch}--\r\n`;
}

export const batchContentType = (batchBoundary: string) => `multipart/mixed; boundary=batchresponse_${batchBoundary.replace(/^batch_/, "")}`;

const REASONS: Record<number, string> = {
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  412: "Precondition Failed",
};

function boundaryOf(contentType: string): string {
  const m = /boundary=([^;\s]+)/i.exec(contentType);
  if (!m) throw new TableError(400, "InvalidInput", "The batch request has no multipart boundary.");
  return m[1]!;
}

/** The parts between `--boundary` lines, without the closing `--boundary--`. */
function split(body: string, boundary: string): string[] {
  const end = body.indexOf(`--${boundary}--`);
  return (end >= 0 ? body.slice(0, end) : body)
    .split(`--${boundary}`)
    .slice(1)
    .map((p) => p.replace(/^\r?\n/, ""));
}

/** Headers (lower-cased names) up to the first blank line, and what follows. */
function headOf(text: string): [Record<string, string>, string] {
  const m = /\r?\n\r?\n/.exec(text);
  const head = m ? text.slice(0, m.index) : text;
  const rest = m ? text.slice(m.index + m[0].length) : "";
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return [headers, rest];
}
