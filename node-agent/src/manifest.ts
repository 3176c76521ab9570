/**
 * The applied-state manifest: every change the agent made to the host, in order, with what `reset` needs to undo it.
 * Changes are recorded before they are made (write-ahead), so a crash between the record and the effect still leaves
 * the change undoable, and every undo tolerates "the effect never happened". A target's first record wins: a later
 * record of the same key would only capture state the agent itself produced. Prior file contents are kept
 * content-addressed in prior/<sha256> (0600, in a 0700 directory), since they may be secrets.
 */
import canonicalize from "canonicalize";
import { mkdir, readFile, readdir, rm, chmod } from "node:fs/promises";
import * as path from "node:path";
import * as z from "zod";
import { STATE_DIR } from "./agent-files.js";
import { fsPathOf } from "./paths.js";
import { lstatIfExists, sha256Hex, writeFileAtomic } from "./fs-atomic.js";
import { ensureOwnerOnlyDir } from "./private-files.js";
import { ManifestCorruptError } from "./step-errors.js";

export { STATE_DIR };
export const MANIFEST_VERSION = 1;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Id = z.int().min(0);
const Mode = z.int().min(0).max(0o7777);

export const PriorStateSchema = z.discriminatedUnion("state", [
  z.strictObject({ state: z.literal("absent") }),
  z.strictObject({ state: z.literal("file"), blob: Sha256, mode: Mode, uid: Id, gid: Id }),
  z.strictObject({ state: z.literal("symlink"), target: z.string().min(1), uid: Id, gid: Id }),
  z.strictObject({ state: z.literal("dir"), mode: Mode, uid: Id, gid: Id }),
]);
export type PriorState = z.infer<typeof PriorStateSchema>;

export const ExtractedEntrySchema = z.strictObject({
  path: z.string().startsWith("/"),
  kind: z.enum(["file", "dir", "symlink"]),
  /** Expected content (files), mode and link target, so a rerun can tell the archive is already in place. */
  sha256: Sha256.optional(),
  mode: Mode.optional(),
  linkTarget: z.string().optional(),
  prior: PriorStateSchema,
});
export type ExtractedEntry = z.infer<typeof ExtractedEntrySchema>;

const changeShapes = {
  /** A file the agent replaced or created; undo puts the prior state back. */
  file: { type: z.literal("file"), path: z.string().startsWith("/"), prior: PriorStateSchema },
  /** A directory the agent created; undo removes it once empty (content the agent did not record is left, and reported). */
  directory: { type: z.literal("directory"), path: z.string().startsWith("/") },
  /**
   * A directory a unit the agent started declares (StateDirectory=, CacheDirectory=, LogsDirectory=) that the plan owns:
   * its content is the unit's, so undo removes it whole once the unit is stopped (never through a link, never across
   * a mount).
   */
  unitDirectory: { type: z.literal("unit-directory"), unit: z.string().min(1), path: z.string().startsWith("/") },
  /** A kernel parameter the agent changed; `prior` null when it could not be read before (then undo leaves it). */
  sysctl: { type: z.literal("sysctl"), name: z.string().min(1), prior: z.string().nullable() },
  /** A kernel module the agent loaded (it was neither loaded nor built in before). */
  module: { type: z.literal("module"), name: z.string().min(1) },
  /** A unit the agent enabled, disabled, started or stopped; `prior` is what systemctl reported before. */
  unit: { type: z.literal("unit"), unit: z.string().min(1), action: z.enum(["enabled", "disabled", "started", "stopped"]), prior: z.string() },
  /** An archive unpacked into `destination`: every entry with its prior state. */
  extracted: { type: z.literal("extracted"), destination: z.string().startsWith("/"), archiveSha256: Sha256, entries: z.array(ExtractedEntrySchema) },
  /** A reload the host needs once the changes recorded after it are undone (unit files, sysext images). */
  refresh: { type: z.literal("refresh"), program: z.enum(["daemon-reload", "sysext"]) },
};
const recordShape = { stepId: z.string().min(1), key: z.string().min(1) };
const s = changeShapes;
export const ChangeBodySchema = z.discriminatedUnion("type", [
  z.strictObject(s.file),
  z.strictObject(s.directory),
  z.strictObject(s.unitDirectory),
  z.strictObject(s.sysctl),
  z.strictObject(s.module),
  z.strictObject(s.unit),
  z.strictObject(s.extracted),
  z.strictObject(s.refresh),
]);
const ChangeSchema = z.discriminatedUnion("type", [
  z.strictObject({ ...recordShape, ...s.file }),
  z.strictObject({ ...recordShape, ...s.directory }),
  z.strictObject({ ...recordShape, ...s.unitDirectory }),
  z.strictObject({ ...recordShape, ...s.sysctl }),
  z.strictObject({ ...recordShape, ...s.module }),
  z.strictObject({ ...recordShape, ...s.unit }),
  z.strictObject({ ...recordShape, ...s.extracted }),
  z.strictObject({ ...recordShape, ...s.refresh }),
]);
export type ChangeBody = z.infer<typeof ChangeBodySchema>;

export type Change = z.infer<typeof ChangeSchema>;

const ManifestFileSchema = z.strictObject({ version: z.literal(MANIFEST_VERSION), changes: z.array(ChangeSchema) });

/** The identity of a change's target: a second record with the same key is not needed (its first record wins). */
export function keyOf(body: ChangeBody): string {
  switch (body.type) {
    case "file":
      return `file:${body.path}`;
    case "directory":
      return `directory:${body.path}`;
    case "unit-directory":
      return `unit-directory:${body.path}`;
    case "sysctl":
      return `sysctl:${body.name}`;
    case "module":
      return `module:${body.name}`;
    case "unit":
      return `unit-${body.action}:${body.unit}`;
    case "extracted":
      return `extracted:${body.destination}:${body.archiveSha256}`;
    case "refresh":
      return `refresh:${body.program}`;
  }
}

export function describeChange(c: ChangeBody): string {
  switch (c.type) {
    case "file":
      return `file ${c.path} (${c.prior.state === "absent" ? "created" : `replaced ${c.prior.state}`})`;
    case "directory":
      return `directory ${c.path} (created)`;
    case "unit-directory":
      return `directory ${c.path} (declared by ${c.unit}, removed whole)`;
    case "sysctl":
      return `sysctl ${c.name} (was ${c.prior ?? "unset"})`;
    case "module":
      return `kernel module ${c.name} (loaded)`;
    case "unit":
      return `unit ${c.unit} (${c.action}; was ${c.prior || "unknown"})`;
    case "extracted":
      return `archive ${c.archiveSha256.slice(0, 12)} unpacked into ${c.destination} (${c.entries.length} entries)`;
    case "refresh":
      return `${c.program === "sysext" ? "systemd-sysext refresh" : "systemctl daemon-reload"} after undo`;
  }
}

function blobsOf(c: Change): string[] {
  const priors = c.type === "file" ? [c.prior] : c.type === "extracted" ? c.entries.map((e) => e.prior) : [];
  return priors.flatMap((p) => (p.state === "file" ? [p.blob] : []));
}

export function digestOf(changes: readonly Change[]): string {
  return `sha256:${sha256Hex(canonicalize({ version: MANIFEST_VERSION, changes }) ?? "")}`;
}

export class Manifest {
  private constructor(
    private readonly root: string,
    private changeList: Change[],
  ) {}

  static stateDir(root: string): string {
    return fsPathOf(root, STATE_DIR);
  }

  static file(root: string): string {
    return path.join(Manifest.stateDir(root), "manifest.json");
  }

  private get priorDir(): string {
    return path.join(Manifest.stateDir(this.root), "prior");
  }

  /** Reads the manifest; an absent file is the empty manifest (nothing is created until the first record). */
  static async open(root: string): Promise<Manifest> {
    let text: string;
    try {
      text = await readFile(Manifest.file(root), "utf8");
    } catch (e) {
      if ((e as { code?: unknown }).code === "ENOENT") return new Manifest(root, []);
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ManifestCorruptError(`${Manifest.file(root)} is not JSON; move it aside only after undoing its changes by hand`, { cause: e });
    }
    const parsed = ManifestFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ManifestCorruptError(
        `${Manifest.file(root)} does not match the manifest schema at /${issue?.path.join("/") ?? ""}: ${issue?.message ?? "invalid"}`,
      );
    }
    return new Manifest(root, parsed.data.changes);
  }

  get changes(): readonly Change[] {
    return this.changeList;
  }

  has(key: string): boolean {
    return this.changeList.some((c) => c.key === key);
  }

  find<T extends ChangeBody["type"]>(type: T, key: string): Extract<Change, { type: T }> | undefined {
    return this.changeList.find((c): c is Extract<Change, { type: T }> => c.type === type && c.key === key);
  }

  digest(): string {
    return digestOf(this.changeList);
  }

  private async ensureDirs(): Promise<void> {
    // 0700 also when enrolment (or an older agent) created it wider: the prior blobs may be secrets.
    await ensureOwnerOnlyDir(Manifest.stateDir(this.root));
    if (!(await lstatIfExists(this.priorDir))) {
      await mkdir(this.priorDir);
      await chmod(this.priorDir, 0o700);
    }
  }

  /** Keeps `content` as a prior-state blob (idempotent) and returns its sha256. Call before recording the change. */
  async storeBlob(content: Uint8Array): Promise<string> {
    await this.ensureDirs();
    const sha = sha256Hex(content);
    const file = path.join(this.priorDir, sha);
    if (!(await lstatIfExists(file))) await writeFileAtomic(file, content, { mode: 0o600 });
    return sha;
  }

  async readBlob(sha: string): Promise<Buffer> {
    return readFile(path.join(this.priorDir, sha));
  }

  /** Records the changes not yet recorded (by key), in one atomic write. Returns those that were new. */
  async record(stepId: string, ...bodies: ChangeBody[]): Promise<Change[]> {
    const added: Change[] = [];
    for (const body of bodies) {
      const key = keyOf(body);
      if (this.has(key) || added.some((c) => c.key === key)) continue;
      added.push({ stepId, key, ...body } as Change);
    }
    if (added.length === 0) return added;
    await this.save([...this.changeList, ...added]);
    return added;
  }

  /** Forgets a change after its undo succeeded, and the prior blobs nothing else refers to. */
  async remove(change: Change): Promise<void> {
    const remaining = this.changeList.filter((c) => c !== change);
    await this.save(remaining);
    const still = new Set(remaining.flatMap(blobsOf));
    for (const blob of blobsOf(change)) if (!still.has(blob)) await rm(path.join(this.priorDir, blob), { force: true });
  }

  private async save(changes: Change[]): Promise<void> {
    if (changes.length === 0 && !(await lstatIfExists(Manifest.file(this.root)))) {
      this.changeList = changes;
      return;
    }
    await this.ensureDirs();
    await writeFileAtomic(Manifest.file(this.root), `${JSON.stringify({ version: MANIFEST_VERSION, changes }, null, 1)}\n`, { mode: 0o600 });
    this.changeList = changes;
  }

  /**
   * With nothing left to undo, the manifest, the prior blobs and the download cache go too, so a reset host looks
   * as it did before the agent ran any step (the empty manifest and an absent one have the same digest).
   */
  async removeStateIfEmpty(): Promise<void> {
    if (this.changeList.length > 0) return;
    const dir = Manifest.stateDir(this.root);
    await rm(Manifest.file(this.root), { force: true });
    await rm(path.join(dir, ".manifest.json.flexnode-tmp"), { force: true });
    await rm(this.priorDir, { recursive: true, force: true });
    await rm(path.join(dir, "downloads"), { recursive: true, force: true });
  }

  /** Prior blobs no change refers to (left by a crash between storing a blob and recording its change). */
  async orphanBlobs(): Promise<string[]> {
    const referenced = new Set(this.changeList.flatMap(blobsOf));
    let names: string[];
    try {
      names = await readdir(this.priorDir);
    } catch {
      return [];
    }
    return names.filter((n) => !referenced.has(n));
  }
}

/** The digest of the manifest at `root`; for a corrupt file, the digest of its bytes (still a stable fingerprint). */
export async function manifestDigestAt(root: string): Promise<string> {
  try {
    return (await Manifest.open(root)).digest();
  } catch (e) {
    if (!(e instanceof ManifestCorruptError)) throw e;
    return `sha256:${sha256Hex(await readFile(Manifest.file(root)))}`;
  }
}
