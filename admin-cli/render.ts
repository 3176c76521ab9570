/** How answers look to people: a table for lists, aligned fields for one object. `--output json` bypasses all of it. */
import type { CommandSpec } from "./commands.js";

type Row = Record<string, unknown>;
type Column = [header: string, value: (r: Row) => unknown];

const get = (r: Row, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Row)[k] : undefined), r);
const col = (header: string, path: string): Column => [header, (r) => get(r, path)];
const ago = (iso: unknown): string => (typeof iso === "string" ? iso.replace(/\.\d+Z$/, "Z") : "");

const COLUMNS: Record<string, Column[]> = {
  nodes: [
    col("NODE", "nodeId"),
    col("POOL", "pool"),
    col("STATUS", "status"),
    col("HOST", "facts.hostname"),
    col("ERROR", "lastError.code"),
    ["CREATED", (r) => ago(r.createdAt)],
  ],
  pools: [
    col("POOL", "name"),
    ["IN-FLIGHT", (r) => `${String(r.inFlight)}/${String(r.maxInFlight)}`],
    ["WAITING", (r) => String(r.waiting ?? 0)],
    col("ARC", "arc.mode"),
    col("LOCATION", "arc.location"),
    col("APPROVAL", "approvalPolicy"),
  ],
  tokens: [
    col("TOKEN", "tokenId"),
    col("POOL", "pool"),
    ["USES", (r) => `${String(r.uses)}/${String(r.maxUses)}`],
    ["STATE", (r) => (r.revokedAt ? "revoked" : r.expiredAt ? "expired" : "active")],
    ["EXPIRES", (r) => ago(r.expiresAt)],
    col("DESCRIPTION", "description"),
  ],
};

export function table(rows: Row[], columns: Column[]): string[] {
  const cells = rows.map((r) => columns.map(([, v]) => format(v(r))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(columns.map(([h]) => h)), ...cells.map(line)];
}

const format = (v: unknown): string => (v === undefined || v === null ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));

/** Lines for a person, by the command's view. */
export function render(view: CommandSpec["view"], body: unknown): string[] {
  const b = (body ?? {}) as Row;
  switch (view) {
    case "none":
      return ["done"];
    case "nodes":
    case "pools":
    case "tokens": {
      const lines = table((b.items as Row[] | undefined) ?? [], COLUMNS[view]!);
      return b.continuationToken ? [...lines, `(more: --continuation-token '${String(b.continuationToken)}')`] : lines;
    }
    case "node":
      return renderNode(b);
    case "fleet":
      return renderFleet(b);
    case "accepted":
      return [
        `${String(b.nodeId)}: ${String(b.status ?? "accepted")}; operation ${String(b.operationId ?? b.instanceId)}`,
        `follow it: flexnode watch ${String(b.nodeId)}`,
      ];
    case "join-config":
      return [String(b.content ?? "")];
    default:
      return fields(b);
  }
}

function fields(b: Row): string[] {
  const entries = Object.entries(b).filter(([k]) => k !== "timeline");
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${format(v)}`);
}

export function progressLine(p: Row | undefined): string {
  if (!p) return "no saga has run";
  const at = p.step ? ` ${String(p.step)} (attempt ${String(p.attempt)})` : "";
  return `${String(p.runtimeStatus)} ${String(p.orchestration ?? "")} phase ${String(p.phase ?? "-")}${at}${p.lastError ? ` — last error: ${String(p.lastError)}` : ""}`;
}

function renderNode(b: Row): string[] {
  const timeline = b.timeline as Row[] | undefined;
  const error = b.lastError as Row | undefined;
  const lines = fields({
    node: b.nodeId,
    pool: b.pool,
    status: b.status,
    host: get(b, "facts.hostname"),
    os: `${String(get(b, "facts.osRelease.id"))} ${String(get(b, "facts.osRelease.versionId"))} ${String(get(b, "facts.arch") ?? "")}`.trim(),
    labels: b.labels,
    token: b.tokenId,
    objects: (b.createdObjects as unknown[] | undefined)?.length ?? 0,
    created: ago(b.createdAt),
    updated: ago(b.updatedAt),
    ...(error ? { error: `${String(error.code)}: ${String(error.message)}` } : {}),
    progress: progressLine(b.progress as Row | undefined),
  });
  if (timeline?.length) {
    lines.push("", "timeline");
    lines.push(
      ...table(timeline, [
        ["AT", (r) => ago(r.at)],
        ["WHAT", (r) => (r.kind === "step" ? `step ${String(r.what)} #${String(r.attempt)}` : r.what)],
        ["BY / OUTCOME", (r) => r.outcome ?? r.actor],
        ["DURATION", (r) => (r.durationMs === undefined ? "" : `${(Number(r.durationMs) / 1000).toFixed(1)}s`)],
      ]).map((l) => `  ${l}`),
    );
  }
  return lines;
}

function renderFleet(b: Row): string[] {
  const pools = (b.pools as Row[] | undefined) ?? [];
  const statuses = ["Enrolling", "AwaitingApproval", "Onboarding", "Ready", "Failed", "Offboarding", "Offboarded"];
  const lines = table(pools, [
    col("POOL", "pool"),
    col("NODES", "nodes"),
    ...statuses.map((s): Column => [s.toUpperCase(), (r) => get(r, `byStatus.${s}`)]),
    ["IN-FLIGHT", (r) => `${String(r.inFlight)}/${String(r.maxInFlight)}`],
    ["WAITING", (r) => String(r.waiting ?? 0)],
  ]);
  const failures = (b.failures ?? {}) as { lastHour?: Row; lastDay?: Row };
  const list = (r: Row | undefined) =>
    r && Object.keys(r).length
      ? Object.entries(r)
          .map(([c, n]) => `${c} ${String(n)}`)
          .join(", ")
      : "none";
  lines.push("", `failures, last hour: ${list(failures.lastHour)}`, `failures, last day:  ${list(failures.lastDay)}`);
  if (b.partial) lines.push("(partial: the fleet is larger than one summary counts)");
  return lines;
}
