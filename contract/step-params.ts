/**
 * Params of each step kind, checked by the agent after the envelope's signature (`verifyStepEnvelope(raw,
 * { paramsSchemas: StepParamsSchemas })`) and again by its executors. A signed envelope is trusted to come from the
 * service, not to be sane: every path the agent may write is absolute, normalised, under /etc, /var or /opt and
 * outside the agent's own files (AGENT_PATHS: its state, identity and manifest, its settings, its executable, the
 * image that carries it, its units and their drop-ins), and no unit step names the agent's own units, so a mistaken
 * plan can never reach /usr (read-only on immutable hosts), a home directory or the agent itself. The agent checks
 * the same again where it resolves paths (node-agent/src/paths.ts). This guards against mistakes, not against a
 * hostile service: a plan that may install and start units runs code as root by design, and the service key is what
 * the node trusts.
 */
import * as z from "zod";
import type { StepParamsSchemas as StepParamsSchemaMap } from "./step-envelope.js";

/** Roots the agent may write below. /usr is absent on purpose: immutable hosts mount it read-only. */
export const WRITABLE_ROOTS = ["/etc", "/var", "/opt"] as const;

/** Why `p` is not an absolute, normalised path, or undefined when it is one. */
export function absolutePathProblem(p: string): string | undefined {
  if (!p.startsWith("/")) return "must be an absolute path";
  if (p.includes("\0")) return "must not contain NUL";
  const segments = p.split("/").slice(1);
  if (segments.some((s) => s === "")) return "must be normalised (no empty segment or trailing slash)";
  if (segments.some((s) => s === "." || s === "..")) return 'must not contain "." or ".." segments';
  return undefined;
}

/** systemd-sysext's search paths outside /usr. */
export const SYSEXT_DIRECTORIES = ["/var/lib/extensions", "/etc/extensions"] as const;
/** Where installSysext puts an image when the step names no directory. */
export const DEFAULT_SYSEXT_DIRECTORY = SYSEXT_DIRECTORIES[0];

/**
 * The agent's own files on a node (node-agent/packaging, orchestrations/join-config). No step writes them: a plan
 * that could would replace the agent's binary, its identity, or the manifest that decides what a reset undoes.
 * node-agent/src/agent-files.ts derives the agent's file locations from here.
 */
export const AGENT_PATHS = {
  /** state.json, identity/, manifest.json, prior/ (the undo records' blobs) and downloads/; 0700. */
  stateDir: "/var/lib/flexnode",
  /** Operator settings (never written by the agent either). /etc/flexnode/ also holds files the plan writes. */
  configFile: "/etc/flexnode/agent.json",
  /** Mutable install: the executable, or a link to the bundle in libDir. */
  executable: "/opt/flexnode/bin/flexnode-agent",
  libDir: "/opt/flexnode/lib",
  /** Flatcar: where Ignition puts the versioned images that /etc/extensions/flexnode-agent.raw links to. */
  imageDir: "/opt/extensions/flexnode-agent",
} as const;

const AGENT_PATH_NAMES: Record<keyof typeof AGENT_PATHS, string> = {
  stateDir: "state directory",
  configFile: "settings file",
  executable: "executable",
  libDir: "library directory",
  imageDir: "image directory",
};

/** The agent's system extension: `<name>.raw` (or a `<name>` directory) in a sysext directory shadows its image. */
export const AGENT_EXTENSION_NAME = "flexnode-agent";

/** The agent's systemd units (flexnode-agent.service/.timer, flexnode-enrol.service, flexnode-sysext-reload.service). */
export const AGENT_UNIT_STEMS = ["flexnode-agent", "flexnode-enrol", "flexnode-sysext-reload"] as const;

/**
 * `p` with "", "." and ".." segments resolved, lower-cased: what it could name on the host, for comparing with the
 * agent's paths (which are lower case; a case-insensitive file system must not make a difference).
 */
function comparable(p: string): string[] {
  const out: string[] = [];
  for (const segment of p.toLowerCase().split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return out;
}

const startsWithSegments = (p: readonly string[], prefix: readonly string[]) => prefix.length <= p.length && prefix.every((s, i) => p[i] === s);

/** A unit or extension file named after `stem`: the stem itself, `stem.<suffix>` (.service, .service.d, .raw) or `stem@...`. */
const namedAfter = (segment: string, stem: string) => segment === stem || segment.startsWith(`${stem}.`) || segment.startsWith(`${stem}@`);

/**
 * Whether a path segment under /etc/systemd names the agent's units or a drop-in directory systemd applies to them:
 * the unit itself (`flexnode-agent.service`, its `.d`, `@` instances and `.wants` links), a prefix drop-in
 * (`flexnode-.service.d` applies to every `flexnode-*.service`), or a type-wide one (`service.d` applies to all).
 */
function dropInReachesAgentUnits(segment: string): boolean {
  if (AGENT_UNIT_STEMS.some((stem) => namedAfter(segment, stem))) return true;
  if (/^[a-z]+\.d$/.test(segment)) return true;
  const prefix = /^(.+-)\.[a-z]+\.d$/.exec(segment)?.[1];
  return prefix !== undefined && AGENT_UNIT_STEMS.some((stem) => stem.startsWith(prefix));
}

/**
 * Why `hostPath` is one of the agent's own files (AGENT_PATHS, its extension image in a sysext directory, its units
 * and their drop-ins and links under /etc/systemd), or undefined when it is not. Also applied to a path that is not
 * normalised (its ".." resolved), so it never depends on the caller having refused those first.
 */
export function agentPathProblem(hostPath: string): string | undefined {
  const p = comparable(hostPath);
  const refuse = (what: string) => `must not be the agent's own ${what}; no step writes it`;
  for (const [key, own] of Object.entries(AGENT_PATHS) as [keyof typeof AGENT_PATHS, string][])
    if (startsWithSegments(p, comparable(own))) return refuse(`${AGENT_PATH_NAMES[key]} (${own})`);
  for (const dir of SYSEXT_DIRECTORIES) {
    const d = comparable(dir);
    if (startsWithSegments(p, d) && p.length > d.length && namedAfter(p[d.length]!, AGENT_EXTENSION_NAME))
      return refuse(`system extension (${dir}/${AGENT_EXTENSION_NAME}.raw)`);
  }
  const systemd = comparable("/etc/systemd");
  if (startsWithSegments(p, systemd) && p.slice(systemd.length).some(dropInReachesAgentUnits))
    return refuse(`systemd units (${AGENT_UNIT_STEMS.map((s) => `${s}.*`).join(", ")}, and drop-ins that apply to them, under /etc/systemd)`);
  return undefined;
}

/** Why `hostPath` is not a path the agent may write, or undefined when it is. */
export function hostPathProblem(hostPath: string): string | undefined {
  const problem = absolutePathProblem(hostPath);
  if (problem) return problem;
  if (hostPath === "/usr" || hostPath.startsWith("/usr/")) return "must not be under /usr (read-only on immutable hosts; the agent never writes it)";
  if (!WRITABLE_ROOTS.some((r) => hostPath.startsWith(`${r}/`))) return `must be under ${WRITABLE_ROOTS.join(", ")}`;
  return agentPathProblem(hostPath);
}

const pathSchema = (problemOf: (p: string) => string | undefined) =>
  z
    .string()
    .max(1024)
    .superRefine((p, ctx) => {
      const problem = problemOf(p);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    });

/** A path the agent may write. */
export const HostPathSchema = pathSchema(hostPathProblem);
/** A path the agent only reads (waitFor): anywhere, but absolute and normalised. */
export const ReadPathSchema = pathSchema(absolutePathProblem);

/** A host path that must sit directly in `dir` and end in `suffix` (drop-in directories read by the host). */
const dropInPath = (dir: string, suffix: string) =>
  HostPathSchema.refine(
    (p) => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes("/") && p.endsWith(suffix) && p.length > dir.length + 1 + suffix.length,
    {
      message: `must be a ${suffix} file directly in ${dir}`,
    },
  );

/** File modes as octal strings; setuid, setgid and sticky bits are refused. */
export const FileModeSchema = z.string().regex(/^0[0-7]{3}$/, 'must be an octal mode such as "0644" (no setuid/setgid/sticky bits)');

export const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");

export const ArtifactRefSchema = z.strictObject({
  url: z.url({ protocol: /^https$/, error: "must be an https URL" }).max(2048),
  sha256: Sha256HexSchema,
});

export const PREFLIGHT_CHECKS = [
  "root",
  "cgroup-v2",
  "swap-off",
  "kernel-modules",
  "ports",
  "var-free-space",
  "clock",
  "api-server-reachable",
  "usr-writable",
] as const;
export const PreflightCheckNameSchema = z.enum(PREFLIGHT_CHECKS);

const uniqueList = <T extends z.ZodType<string>>(item: T, max: number) =>
  z
    .array(item)
    .max(max)
    .refine((xs) => new Set(xs).size === xs.length, { message: "must not repeat an entry" });

export const PreflightParamsSchema = z.strictObject({
  checks: uniqueList(PreflightCheckNameSchema, PREFLIGHT_CHECKS.length).optional(),
  ignore: uniqueList(PreflightCheckNameSchema, PREFLIGHT_CHECKS.length).optional(),
  apiServer: z
    .url({ protocol: /^https$/, error: "must be an https URL" })
    .max(2048)
    .optional(),
  expectImmutable: z.boolean().optional(),
});

export const WriteFilesParamsSchema = z.strictObject({
  files: z
    .array(
      z.strictObject({
        path: HostPathSchema,
        content: z.string().max(1024 * 1024),
        mode: FileModeSchema,
        uid: z.int().min(0).max(0xfffffffe).optional(),
        gid: z.int().min(0).max(0xfffffffe).optional(),
      }),
    )
    .min(1)
    .max(64)
    .refine((fs) => new Set(fs.map((f) => f.path)).size === fs.length, { message: "must not write the same path twice" }),
});

const SysctlNameSchema = z.string().regex(/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/, "must be a sysctl name such as net.ipv4.ip_forward");
// One line of printable ASCII: the drop-in is line-oriented, so a newline would smuggle in another setting.
const SysctlValueSchema = z.string().regex(/^[\x20-\x7e]{1,256}$/, "must be 1-256 printable ASCII characters on one line");

export const SysctlParamsSchema = z.strictObject({
  dropIn: dropInPath("/etc/sysctl.d", ".conf"),
  settings: z
    .record(SysctlNameSchema, SysctlValueSchema)
    .refine((s) => Object.keys(s).length > 0 && Object.keys(s).length <= 128, { message: "must hold 1-128 settings" }),
});

// A leading "-" would reach modprobe as an option.
export const KernelModuleNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be a kernel module name");

export const KernelModulesParamsSchema = z.strictObject({
  modules: uniqueList(KernelModuleNameSchema, 64).refine((m) => m.length > 0, { message: "must name at least one module" }),
  persistFile: dropInPath("/etc/modules-load.d", ".conf"),
});

export const FetchArtifactParamsSchema = z
  .strictObject({
    artifact: ArtifactRefSchema,
    destination: HostPathSchema,
    unpack: z.literal("tar.gz").optional(),
    mode: FileModeSchema.optional(),
  })
  .refine((p) => !(p.unpack && p.mode), { message: "mode applies to a single file; an unpacked archive keeps its entries' modes", path: ["mode"] });

export const InstallSysextParamsSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be an extension image name"),
    artifact: ArtifactRefSchema,
    directory: z.enum(SYSEXT_DIRECTORIES).optional(),
    refresh: z.boolean().optional(),
  })
  .superRefine((p, ctx) => {
    // The image lands at <directory>/<name>.raw (install-sysext.ts): the agent's own image is not replaced or shadowed.
    const problem = agentPathProblem(`${p.directory ?? DEFAULT_SYSEXT_DIRECTORY}/${p.name}.raw`);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["name"] });
  });

// A leading "-" would reach systemctl as an option.
export const UnitNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9:_.@-]{0,199}\.(service|socket|timer|target|path|mount)$/, "must be a systemd unit name")
  .refine(
    (name) => !AGENT_UNIT_STEMS.some((stem) => namedAfter(name.toLowerCase(), stem)),
    "must not be one of the agent's own units; no step starts or stops them",
  );

export const SystemdUnitsParamsSchema = z.strictObject({
  daemonReload: z.boolean().optional(),
  units: z
    .array(z.strictObject({ name: UnitNameSchema, enable: z.boolean().optional(), start: z.boolean().optional() }))
    .min(1)
    .max(32),
});

const HostNameSchema = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[?[0-9a-fA-F:.]+\]?$/, "must be a host name or IP address");

export const WaitForParamsSchema = z
  .strictObject({
    file: ReadPathSchema.optional(),
    tcp: z.strictObject({ host: HostNameSchema, port: z.int().min(1).max(65535) }).optional(),
    url: z
      .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
      .max(2048)
      .optional(),
    timeoutSeconds: z.int().min(1).max(3600),
  })
  .refine((p) => [p.file, p.tcp, p.url].filter((x) => x !== undefined).length === 1, { message: "must name exactly one of file, tcp, url" });

export const FetchSecretParamsSchema = z.strictObject({
  secretRef: z.string().regex(/^[A-Za-z0-9._:-]{1,256}$/, "must be a secret reference"),
  path: HostPathSchema,
  mode: z.enum(["0600", "0400"]).optional(),
});

export const ResetParamsSchema = z.strictObject({ scope: z.literal("all").optional() });

export type PreflightParams = z.infer<typeof PreflightParamsSchema>;
export type WriteFilesParams = z.infer<typeof WriteFilesParamsSchema>;
export type SysctlParams = z.infer<typeof SysctlParamsSchema>;
export type KernelModulesParams = z.infer<typeof KernelModulesParamsSchema>;
export type FetchArtifactParams = z.infer<typeof FetchArtifactParamsSchema>;
export type InstallSysextParams = z.infer<typeof InstallSysextParamsSchema>;
export type SystemdUnitsParams = z.infer<typeof SystemdUnitsParamsSchema>;
export type WaitForParams = z.infer<typeof WaitForParamsSchema>;
export type FetchSecretParams = z.infer<typeof FetchSecretParamsSchema>;
export type ResetParams = z.infer<typeof ResetParamsSchema>;
export type ArtifactRef = z.infer<typeof ArtifactRefSchema>;

/** Every kind's params schema, for `verifyStepEnvelope(raw, { paramsSchemas: StepParamsSchemas })`. */
export const StepParamsSchemas = {
  preflight: PreflightParamsSchema,
  writeFiles: WriteFilesParamsSchema,
  sysctl: SysctlParamsSchema,
  kernelModules: KernelModulesParamsSchema,
  fetchArtifact: FetchArtifactParamsSchema,
  installSysext: InstallSysextParamsSchema,
  systemdUnits: SystemdUnitsParamsSchema,
  waitFor: WaitForParamsSchema,
  fetchSecret: FetchSecretParamsSchema,
  reset: ResetParamsSchema,
} as const satisfies Required<StepParamsSchemaMap>;
