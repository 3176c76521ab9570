/**
 * A transpiler for exactly the Butane subset flexnode.bu uses (variant flatcar, version 1.0.0 → Ignition spec 3.3.0):
 * storage.files (inline or remote contents, sha256/sha512 verification, mode, overwrite), storage.directories,
 * storage.links, systemd.units (contents, enabled, mask, dropins). Anything else is refused by name rather than
 * dropped, so the output is never silently different from what the real `butane` would produce.
 *
 * Why not the real tool: Butane is a Go binary that is neither in Debian 12 nor downloadable here. This follows its
 * documented translation: field order as Ignition's Go types marshal, inline contents as the shortest of a
 * URL-escaped data URL, a base64 one, or gzip+base64 (then `compression: "gzip"`), `compression: ""` on inline
 * contents otherwise, and Go's JSON escaping of <, > and &. `butane --pretty --strict` gives the same JSON, except that
 * when gzip wins the compressed bytes come from zlib here and Go's compress/flate there (both inflate to the same
 * contents). flexnode.bu keeps its inline contents small enough that gzip does not win.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import * as YAML from "yaml";
import * as z from "zod";

export const IGNITION_VERSION = "3.3.0";

const AbsolutePath = z.string().regex(/^\/[^\0]*$/, "must be an absolute path");
const Mode = z.int().min(0).max(0o7777);

const ContentsSchema = z
  .strictObject({
    inline: z.string().optional(),
    source: z.url().optional(),
    verification: z
      .strictObject({ hash: z.string().regex(/^(sha512-[0-9a-f]{128}|sha256-[0-9a-f]{64})$/, "must be sha512-<128 hex> or sha256-<64 hex>") })
      .optional(),
  })
  .refine((c) => (c.inline === undefined) !== (c.source === undefined), "exactly one of inline and source")
  .refine((c) => c.verification === undefined || c.source !== undefined, "verification applies to a remote source");

const FileSchema = z.strictObject({ path: AbsolutePath, mode: Mode.optional(), overwrite: z.boolean().optional(), contents: ContentsSchema.optional() });
const DirectorySchema = z.strictObject({ path: AbsolutePath, mode: Mode.optional(), overwrite: z.boolean().optional() });
const LinkSchema = z.strictObject({ path: AbsolutePath, target: z.string().min(1), hard: z.boolean().optional(), overwrite: z.boolean().optional() });
const UnitName = z.string().regex(/^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device)$/, "must be a unit name");
const UnitSchema = z.strictObject({
  name: UnitName,
  enabled: z.boolean().optional(),
  mask: z.boolean().optional(),
  contents: z.string().optional(),
  dropins: z.array(z.strictObject({ name: z.string().regex(/^[^/]+\.conf$/, "must be a <name>.conf file name"), contents: z.string().optional() })).optional(),
});

export const ButaneSchema = z.strictObject({
  variant: z.literal("flatcar"),
  version: z.literal("1.0.0"),
  storage: z
    .strictObject({ files: z.array(FileSchema).optional(), directories: z.array(DirectorySchema).optional(), links: z.array(LinkSchema).optional() })
    .optional(),
  systemd: z.strictObject({ units: z.array(UnitSchema).optional() }).optional(),
});
export type ButaneConfig = z.infer<typeof ButaneSchema>;

export class ButaneError extends Error {
  readonly code = "butane_unsupported";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = "ButaneError";
  }
}

/** Butane reads YAML 1.1 integers, so `mode: 0644` is octal (420) as in every Butane example. */
export function parseButane(text: string): ButaneConfig {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { version: "1.1", strict: true, uniqueKeys: true });
  } catch (error) {
    throw new ButaneError("(document)", `is not YAML: ${(error as Error).message}`);
  }
  const parsed = ButaneSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join(".") || "(document)";
    if (issue.code === "unrecognized_keys")
      throw new ButaneError(field === "(document)" ? issue.keys.join(", ") : `${field}.${issue.keys.join(", ")}`, "not supported by this transpiler");
    throw new ButaneError(field, issue.message);
  }
  return parsed.data;
}

/** RFC 2396 unreserved characters stay; every other byte becomes %XX (what Butane's data-URL escaping does). */
function escapeDataUrl(bytes: Buffer): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.!~*'()]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The shortest of the three encodings Butane tries, and the compression field that goes with it. */
export function inlineResource(contents: string): { compression: string; source: string } {
  const bytes = Buffer.from(contents, "utf8");
  let opaque = `,${escapeDataUrl(bytes)}`;
  const b64 = `;base64,${bytes.toString("base64")}`;
  if (b64.length < opaque.length) opaque = b64;
  const gz = `;base64,${gzipSync(bytes, { level: 9 }).toString("base64")}`;
  if (gz.length + "gzip".length < opaque.length) return { compression: "gzip", source: `data:${gz}` };
  return { compression: "", source: `data:${opaque}` };
}

/** Decodes a data: URL as Ignition does (for tests and for checking a rendered config). */
export function decodeDataUrl(source: string, compression: string | undefined): Buffer {
  const match = /^data:([^,]*),(.*)$/s.exec(source);
  if (!match) throw new Error(`not a data URL: ${source.slice(0, 40)}`);
  const raw = match[1]!.endsWith(";base64") ? Buffer.from(match[2]!, "base64") : Buffer.from(decodeURIComponent(match[2]!), "utf8");
  return compression === "gzip" ? gunzipSync(raw) : raw;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Keeps keys whose value is defined, in the order given (the order Ignition's Go structs marshal in). */
function ordered(entries: [string, Json | undefined][]): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [k, v] of entries) if (v !== undefined) out[k] = v;
  return out;
}

export function toIgnition(config: ButaneConfig): { [key: string]: Json } {
  const storage = config.storage;
  const files = storage?.files?.map((f) =>
    ordered([
      ["overwrite", f.overwrite],
      ["path", f.path],
      [
        "contents",
        f.contents === undefined
          ? undefined
          : f.contents.inline !== undefined
            ? inlineResource(f.contents.inline)
            : ordered([
                ["source", f.contents.source],
                ["verification", f.contents.verification ? { hash: f.contents.verification.hash } : undefined],
              ]),
      ],
      ["mode", f.mode],
    ]),
  );
  const directories = storage?.directories?.map((d) =>
    ordered([
      ["overwrite", d.overwrite],
      ["path", d.path],
      ["mode", d.mode],
    ]),
  );
  const links = storage?.links?.map((l) =>
    ordered([
      ["overwrite", l.overwrite],
      ["path", l.path],
      ["hard", l.hard],
      ["target", l.target],
    ]),
  );
  const units = config.systemd?.units?.map((u) =>
    ordered([
      ["contents", u.contents],
      [
        "dropins",
        u.dropins?.map((d) =>
          ordered([
            ["contents", d.contents],
            ["name", d.name],
          ]),
        ),
      ],
      ["enabled", u.enabled],
      ["mask", u.mask],
      ["name", u.name],
    ]),
  );
  const nonEmpty = <T>(list: T[] | undefined): T[] | undefined => (list && list.length > 0 ? list : undefined);
  const storageOut = ordered([
    ["directories", nonEmpty(directories)],
    ["files", nonEmpty(files)],
    ["links", nonEmpty(links)],
  ]);
  const systemdOut = ordered([["units", nonEmpty(units)]]);
  return ordered([
    ["ignition", { version: IGNITION_VERSION }],
    ["storage", Object.keys(storageOut).length > 0 ? storageOut : undefined],
    ["systemd", Object.keys(systemdOut).length > 0 ? systemdOut : undefined],
  ]);
}

/** `butane --pretty` output: two-space indentation, Go's HTML-safe escaping, a final newline. */
export function formatIgnition(ignition: { [key: string]: Json }): string {
  const text = JSON.stringify(ignition, null, 2)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
  return `${text}\n`;
}

export function transpile(butaneText: string): string {
  return formatIgnition(toIgnition(parseButane(butaneText)));
}
