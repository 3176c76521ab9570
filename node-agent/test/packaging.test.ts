/**
 * The agent's packaging, checked on what the build produced: the bundle and the single executable run with nothing but
 * themselves, nothing of the service rides along, the sysext image has exactly the expected layout and is
 * reproducible, the units pass `systemd-analyze verify` both as the mutable install and as the merged image, and the
 * committed Flatcar Ignition config is what flexnode.bu transpiles to and what ignition-validate accepts.
 */
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentConfigFileSchema } from "../src/config.js";
import { parseEnrolmentUrl } from "../src/enrolment-url.js";
import { buildAgent, type BuildInfo } from "../packaging/build.js";
import { bundleAgent, inspectInputs } from "../packaging/bundle.js";
import { fileDigest } from "../packaging/digest.js";
import { decodeDataUrl, transpile } from "../packaging/flatcar/butane.js";
import { imageFileName } from "../packaging/flatcar/release.js";
import { onNode, outputs, sources } from "../packaging/layout.js";
import { haveTool, runTool, type ToolResult } from "../packaging/run-tool.js";
import { buildSysext, listImage, parseOsRelease, systemdArchitecture } from "../packaging/sysext.js";

let info: BuildInfo;
let scratch: string;
const cleanEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

const run = (tool: string, args: readonly string[], cwd?: string): Promise<ToolResult> =>
  runTool(tool, args, { allowFailure: true, env: cleanEnv, ...(cwd ? { cwd } : {}) });

beforeAll(async () => {
  // Always through the build: it reuses the SEA and the image when their inputs are unchanged, so a fresh
  // `npm run build:agent` costs about a second here, and a stale dist/ can never be what gets tested.
  info = await buildAgent({ log: () => undefined, updateSources: false });
  scratch = await mkdtemp(join(tmpdir(), "flexnode-packaging-"));
}, 300_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("one-file bundle", () => {
  it("runs `version` from a directory with no node_modules, as `node file` and through its shebang, like the sources do", async () => {
    const dir = join(scratch, "bundle-alone");
    await mkdir(dir);
    const copy = join(dir, "flexnode-agent.mjs");
    await copyFile(outputs.bundle, copy);
    await chmod(copy, 0o755);

    const viaNode = await run(process.execPath, [copy, "version"], dir);
    const viaShebang = await run(copy, ["version"], dir);
    const fromSources = await run(process.execPath, ["--import", "tsx", sources.entry, "version"]);
    expect(fromSources.code).toBe(0);
    expect(viaNode).toEqual(fromSources);
    expect(viaShebang).toEqual(fromSources);
    expect(viaNode.stdout).toMatch(/^flexnode-agent \d+\.\d+\.\d+/);
    expect(info.version).toBe(/^flexnode-agent (\S+)/.exec(viaNode.stdout)![1]);
  });

  it("is executable and starts with the env shebang", async () => {
    const text = await readFile(outputs.bundle, "utf8");
    expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(text.indexOf("#!", 2)).toBe(-1);
    const { stdout } = await run("stat", ["-c", "%a", outputs.bundle]);
    expect(stdout.trim()).toBe("755");
  });

  it("holds only agent sources and no service-only package (esbuild metafile)", async () => {
    const report = inspectInputs(JSON.parse(await readFile(outputs.bundleMeta, "utf8")));
    expect(report.violations).toEqual([]);
    expect(report.sources).toContain("node-agent/src/main.ts");
    for (const source of report.sources) expect(source).toMatch(/^(node-agent|contract)\//);
    for (const name of Object.keys(report.packages)) expect(name).not.toMatch(/^(@azure\/(functions|data-tables|arm-|identity|msal-)|durable-functions)/);
  });

  it("the metafile check does catch a service package", async () => {
    const probe = await bundleAgent({
      source: {
        stdin: { contents: 'import { TableClient } from "@azure/data-tables"; console.log(typeof TableClient);', sourcefile: "node-agent/test/leak-probe.ts" },
      },
      format: "esm",
      outfile: join(scratch, "leak.mjs"),
    });
    expect(inspectInputs(probe.metafile).violations.some((v) => v.startsWith("service-only package @azure/data-tables"))).toBe(true);
  });

  it.each(["esm", "cjs"] as const)(
    "bundles the agent's dependencies so they work without node_modules (%s)",
    async (format) => {
      // The agent grows into these (mailbox, envelopes, signed requests, artifacts); the bundler settings must carry
      // CommonJS packages (rhea, the Azure SDK's CJS builds) into both output formats and keep their builtin requires working.
      const probe = `
      import { generateKeyPairSync, sign } from "node:crypto";
      import { mkdtempSync, writeFileSync } from "node:fs";
      import { tmpdir } from "node:os";
      import { join } from "node:path";
      import { ServiceBusClient } from "@azure/service-bus";
      import { AzureSASCredential } from "@azure/core-auth";
      import * as z from "zod";
      import canonicalize from "canonicalize";
      import { httpbis } from "http-message-signatures";
      import * as tar from "tar";
      async function probe() {
        const client = new ServiceBusClient("127.0.0.1:1/;UseDevelopmentEmulator=true;_=", new AzureSASCredential("SharedAccessSignature sr=x&sig=y&se=1&skn=z"));
        await client.close();
        const parsed = z.object({ n: z.int() }).parse({ n: 3 });
        const { privateKey } = generateKeyPairSync("ed25519");
        const signed = await httpbis.signMessage(
          { key: { id: "k", alg: "ed25519", sign: async (data) => sign(null, data, privateKey) }, fields: ["@method", "@path"] },
          { method: "POST", url: "https://svc.example/api/node/secrets/x", headers: {} },
        );
        const dir = mkdtempSync(join(tmpdir(), "probe-"));
        writeFileSync(join(dir, "a.txt"), "hello");
        await tar.c({ file: join(dir, "a.tar"), cwd: dir }, ["a.txt"]);
        const listed = [];
        await tar.t({ file: join(dir, "a.tar"), onReadEntry: (e) => listed.push(e.path) });
        console.log(JSON.stringify({ parsed, canonical: canonicalize({ b: 1, a: 2 }), signature: typeof signed.headers["Signature"], listed }));
      }
      probe().catch((e) => { console.error(e); process.exitCode = 1; });`;
      const outfile = join(scratch, `probe.${format === "esm" ? "mjs" : "cjs"}`);
      const bundled = await bundleAgent({ source: { stdin: { contents: probe, sourcefile: "node-agent/test/dependency-probe.ts" } }, format, outfile });
      expect(inspectInputs(bundled.metafile).violations).toEqual([]);
      const dir = await mkdtemp(join(scratch, "probe-"));
      const copy = join(dir, `probe.${format === "esm" ? "mjs" : "cjs"}`);
      await copyFile(outfile, copy);
      const result = await run(process.execPath, [copy], dir);
      expect(result.stderr).toBe("");
      expect(JSON.parse(result.stdout)).toEqual({ parsed: { n: 3 }, canonical: '{"a":2,"b":1}', signature: "string", listed: ["a.txt"] });
    },
    60_000,
  );
});

describe("single executable (SEA)", () => {
  it("runs like the bundle, from a directory of its own, with no node on PATH", async (ctx) => {
    if (!info.sea.built) {
      console.warn(`SEA not built: ${info.sea.reason}`);
      ctx.skip(`SEA not built: ${info.sea.reason}`);
    }
    const dir = join(scratch, "sea-alone");
    await mkdir(dir);
    const copy = join(dir, "flexnode-agent");
    await copyFile(outputs.sea, copy);
    await chmod(copy, 0o755);
    for (const args of [["version"], ["no-such-command"], []]) {
      const sea = await runTool(copy, args, { allowFailure: true, cwd: dir, env: { PATH: "/nonexistent" } });
      const bundle = await run(process.execPath, [outputs.bundle, ...args], dir);
      expect({ args, ...sea }).toEqual({ args, ...bundle });
    }
  });
});

describe("sysext image", () => {
  const release = `usr/lib/extension-release.d/extension-release.${onNode.extensionName}`;

  it("holds the agent, its unit and drop-in, the PATH link and the extension-release file, all root-owned under usr/", async () => {
    const rows = await listImage(outputs.sysext);
    const files = rows.filter((r) => !r.mode.startsWith("d"));
    const payload =
      info.sysext.payload === "sea"
        ? ["usr/lib/flexnode/flexnode-agent"]
        : ["usr/lib/flexnode/flexnode-agent", "usr/lib/flexnode/flexnode-agent.mjs", "usr/lib/flexnode/node"];
    expect(files.map((r) => r.path).sort()).toEqual(
      [
        ...payload,
        "usr/bin/flexnode-agent",
        "usr/lib/systemd/system/flexnode-agent.service",
        "usr/lib/systemd/system/flexnode-agent.service.d/10-sysext.conf",
        "usr/lib/systemd/system/flexnode-agent.timer",
        release,
      ].sort(),
    );
    for (const r of rows) {
      expect(r.owner).toBe("root/root");
      if (r.path !== "") expect(r.path).toMatch(/^(usr|opt)(\/|$)/);
    }
    const mode = (path: string): string | undefined => rows.find((r) => r.path === path)?.mode;
    expect(mode("usr/lib/flexnode/flexnode-agent")).toBe("-rwxr-xr-x");
    expect(mode(release)).toBe("-rw-r--r--");
    expect(rows.find((r) => r.path === "usr/bin/flexnode-agent")?.target).toBe("../lib/flexnode/flexnode-agent");
  });

  it("carries an extension-release that matches the image name and this architecture, and the packaged unit files", async () => {
    const dir = join(scratch, "image");
    const out = await run("unsquashfs", ["-no-progress", "-d", dir, outputs.sysext]);
    expect(out.code).toBe(0);
    // systemd-sysext matches usr/lib/extension-release.d/extension-release.<NAME> against the image file <NAME>.raw.
    expect(outputs.sysext.endsWith(`/${onNode.extensionName}.raw`)).toBe(true);
    const fields = parseOsRelease(await readFile(join(dir, release), "utf8"));
    expect(fields).toMatchObject({ ID: "_any", ARCHITECTURE: systemdArchitecture(), SYSEXT_ID: onNode.extensionName, SYSEXT_VERSION_ID: info.version });
    expect(await readFile(join(dir, "usr/lib/systemd/system/flexnode-agent.service"), "utf8")).toBe(await readFile(sources.unit, "utf8"));
    expect(await readFile(join(dir, "usr/lib/systemd/system/flexnode-agent.service.d/10-sysext.conf"), "utf8")).toBe(
      await readFile(sources.sysextDropIn, "utf8"),
    );
    expect(await readFile(join(dir, "usr/lib/systemd/system/flexnode-agent.timer"), "utf8")).toBe(await readFile(sources.timer, "utf8"));
    const agent = await run(join(dir, "usr/lib/flexnode/flexnode-agent"), ["version"]);
    expect(agent).toMatchObject({ code: 0, stdout: `flexnode-agent ${info.version}\n` });
  });

  it("falls back to node + bundle behind the same path when there is no single executable", async () => {
    const image = join(scratch, "fallback.raw");
    await buildSysext({
      payload: { kind: "node-and-bundle", node: process.execPath, bundle: outputs.bundle },
      version: info.version,
      arch: systemdArchitecture(),
      output: image,
    });
    const paths = (await listImage(image)).filter((r) => !r.mode.startsWith("d")).map((r) => r.path);
    expect(paths).toEqual(
      expect.arrayContaining(["usr/lib/flexnode/node", "usr/lib/flexnode/flexnode-agent.mjs", "usr/lib/flexnode/flexnode-agent", "usr/bin/flexnode-agent"]),
    );
    const dir = join(scratch, "fallback");
    expect((await run("unsquashfs", ["-no-progress", "-d", dir, image])).code).toBe(0);
    const wrapper = await readFile(join(dir, "usr/lib/flexnode/flexnode-agent"), "utf8");
    expect(wrapper).toBe(`#!/bin/sh\nexec /usr/lib/flexnode/node /usr/lib/flexnode/flexnode-agent.mjs "$@"\n`);
    // What the wrapper runs, with the image's own node and bundle.
    expect(await run(join(dir, "usr/lib/flexnode/node"), [join(dir, "usr/lib/flexnode/flexnode-agent.mjs"), "version"])).toMatchObject({
      code: 0,
      stdout: `flexnode-agent ${info.version}\n`,
    });
  }, 120_000);

  it("is reproducible: a fresh build from the same inputs has the same bytes", async () => {
    const again = join(scratch, "again.raw");
    const payload =
      info.sysext.payload === "sea"
        ? { kind: "sea" as const, executable: outputs.sea }
        : { kind: "node-and-bundle" as const, node: process.execPath, bundle: outputs.bundle };
    const rebuilt = await buildSysext({ payload, version: info.version, arch: systemdArchitecture(), output: again });
    expect(rebuilt.reused).toBe(false);
    expect(await fileDigest(again, "sha512")).toBe(await fileDigest(outputs.sysext, "sha512"));
    expect((await readFile(outputs.sysextSha512, "utf8")).split(/\s+/)[0]).toBe(rebuilt.sha512);
  }, 120_000);
});

describe("systemd units", () => {
  let hostUnits = false;
  beforeAll(async () => {
    hostUnits = (await haveTool("systemd-analyze")) && (await run("test", ["-f", "/usr/lib/systemd/system/multi-user.target"])).code === 0;
  });

  /**
   * `systemd-analyze verify` needs the units a unit depends on (sysinit.target, network-online.target…) and checks
   * that ExecStart= is executable; with --root both are looked up inside the root. So each root gets a copy of this
   * machine's /usr/lib/systemd/system plus what is being verified.
   */
  async function rootWithHostUnits(name: string): Promise<string> {
    const root = join(scratch, name);
    await mkdir(join(root, "usr/lib/systemd"), { recursive: true });
    await cp("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    return root;
  }
  const verify = (root: string, unit: string): Promise<ToolResult> => run("systemd-analyze", ["verify", `--root=${root}`, unit]);

  it("the mutable install verifies cleanly, and verify does fail when the binary is missing", async (ctx) => {
    if (!hostUnits) ctx.skip("systemd-analyze or the host's unit directory is missing");
    const root = await rootWithHostUnits("mutable-root");
    await mkdir(join(root, "etc/systemd/system"), { recursive: true });
    await copyFile(sources.unit, join(root, "etc/systemd/system", onNode.unitName));
    const missing = await verify(root, onNode.unitName);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`${onNode.mutableBinary} is not executable`);

    await mkdir(join(root, "opt/flexnode/bin"), { recursive: true });
    await copyFile(outputs.bundle, join(root, onNode.mutableBinary));
    await chmod(join(root, onNode.mutableBinary), 0o755);
    expect(await verify(root, onNode.unitName)).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("the merged sysext image verifies cleanly: its drop-in points ExecStart at the image's binary", async (ctx) => {
    if (!hostUnits) ctx.skip("systemd-analyze or the host's unit directory is missing");
    const root = await rootWithHostUnits("sysext-root");
    // What systemd-sysext's overlay shows: the image's usr/ over the host's.
    expect((await run("unsquashfs", ["-no-progress", "-f", "-d", root, outputs.sysext])).code).toBe(0);
    // No /opt/flexnode here: the base unit's ExecStart would fail verify, so a pass means the drop-in took effect.
    expect(await verify(root, onNode.unitName)).toEqual({ code: 0, stdout: "", stderr: "" });

    // The units the Flatcar example adds (enrol oneshot, ordering drop-in) verify against the same merged image.
    const ignition = JSON.parse(await readFile(sources.ignition, "utf8")) as IgnitionDoc;
    for (const unit of ignition.systemd.units) {
      const dir = join(root, "etc/systemd/system");
      await mkdir(dir, { recursive: true });
      if (unit.contents !== undefined) await writeFile(join(dir, unit.name), unit.contents);
      for (const dropin of unit.dropins ?? []) {
        await mkdir(join(dir, `${unit.name}.d`), { recursive: true });
        await writeFile(join(dir, `${unit.name}.d`, dropin.name), dropin.contents);
      }
    }
    for (const unit of ignition.systemd.units)
      expect({ unit: unit.name, ...(await verify(root, unit.name)) }).toEqual({ unit: unit.name, code: 0, stdout: "", stderr: "" });
    // Drain mode's timer, from the image, and the boot-time reload unit for systemd < 255 hosts (in /etc).
    expect(await verify(root, onNode.timerName)).toEqual({ code: 0, stdout: "", stderr: "" });
    await copyFile(sources.sysextReloadUnit, join(root, "etc/systemd/system/flexnode-sysext-reload.service"));
    // It runs the host's systemctl, which verify looks for inside the root.
    await copyFile("/usr/bin/systemctl", join(root, "usr/bin/systemctl"));
    await chmod(join(root, "usr/bin/systemctl"), 0o755);
    expect(await verify(root, "flexnode-sysext-reload.service")).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("is hardened without a private mount namespace, and scores better than the same unit unhardened", async (ctx) => {
    if (!hostUnits) ctx.skip("systemd-analyze or the host's unit directory is missing");
    const unit = await readFile(sources.unit, "utf8");
    const directives = new Map(
      unit
        .split("\n")
        .filter((l) => /^[A-Za-z]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const),
    );
    // Each of these gives the service its own mount namespace (or blocks modprobe/sysctl/sysext): a sysext merge the
    // agent runs would then never reach the host. The README explains each.
    const forbidden = [
      "ProtectSystem",
      "ProtectHome",
      "PrivateTmp",
      "ReadWritePaths",
      "ReadOnlyPaths",
      "InaccessiblePaths",
      "PrivateDevices",
      "PrivateMounts",
      "ProtectKernelModules",
      "ProtectKernelTunables",
      "ProtectKernelLogs",
      "ProtectControlGroups",
      "ProtectClock",
      "ProtectProc",
      "TemporaryFileSystem",
      "BindPaths",
      "RootDirectory",
      "RestrictNamespaces",
      "MemoryDenyWriteExecute",
      "DeviceAllow",
    ];
    expect(forbidden.filter((d) => directives.has(d))).toEqual([]);
    expect(directives.get("ExecStart")).toBe(`${onNode.mutableBinary} run`);
    expect(directives.get("Restart")).toBe("on-failure");
    expect(directives.get("Before")).toBe("kubelet.service");
    expect(directives.get("After")).toBe("network-online.target");
    expect(directives.get("WantedBy")).toBe("multi-user.target");

    const exposure = async (name: string, text: string): Promise<number> => {
      const root = await rootWithHostUnits(name);
      await mkdir(join(root, "etc/systemd/system"), { recursive: true });
      await writeFile(join(root, "etc/systemd/system", onNode.unitName), text);
      await mkdir(join(root, "opt/flexnode/bin"), { recursive: true });
      await copyFile(outputs.bundle, join(root, onNode.mutableBinary));
      await chmod(join(root, onNode.mutableBinary), 0o755);
      const result = await run("systemd-analyze", ["security", "--offline=yes", `--root=${root}`, "--no-pager", onNode.unitName]);
      const match = /Overall exposure level for \S+: (\d+\.\d+)/.exec(result.stdout);
      if (!match) throw new Error(`no exposure level in: ${result.stdout.slice(-300)} ${result.stderr}`);
      return Number(match[1]);
    };
    const hardening =
      /^(NoNewPrivileges|CapabilityBoundingSet|RestrictSUIDSGID|LockPersonality|RestrictRealtime|SystemCallArchitectures|SystemCallFilter|SystemCallErrorNumber|RestrictAddressFamilies)=/;
    const hardened = await exposure("security-hardened", unit);
    const bare = await exposure(
      "security-bare",
      unit
        .split("\n")
        .filter((l) => !hardening.test(l))
        .join("\n"),
    );
    console.warn(`systemd-analyze security --offline: hardened ${hardened}, without the hardening directives ${bare}`);
    expect(hardened).toBeLessThan(bare);
    expect(hardened).toBeLessThanOrEqual(7.0);
  }, 60_000);
});

interface IgnitionDoc {
  ignition: { version: string };
  storage: {
    files: { path: string; mode?: number; contents: { source: string; compression?: string; verification?: { hash: string } } }[];
    links: { path: string; target: string; hard?: boolean }[];
  };
  systemd: { units: { name: string; enabled?: boolean; contents?: string; dropins?: { name: string; contents: string }[] }[] };
}

describe("Flatcar example", () => {
  it("the committed flexnode.ign is what flexnode.bu transpiles to, and ignition-validate accepts it and the rendered one", async (ctx) => {
    const committed = await readFile(sources.ignition, "utf8");
    expect(info.flatcar.changed).toBe(false);
    expect(committed).toBe(transpile(await readFile(sources.butane, "utf8")));
    if (!(await haveTool("ignition-validate", ["--version"]))) ctx.skip("ignition-validate is not installed (Debian package ignition)");
    for (const file of [sources.ignition, join(outputs.flatcarDir, "flexnode.ign")])
      expect({ file, ...(await run("ignition-validate", [file])) }).toEqual({ file, code: 0, stdout: "", stderr: "" });
    // The validator is live: a broken hash is refused.
    const broken = join(scratch, "broken.ign");
    await writeFile(broken, committed.replace(/sha512-0+/, "sha512-xyz"));
    expect((await run("ignition-validate", [broken])).code).not.toBe(0);
  });

  it("writes an agent.json the agent accepts, and enables the image's unit", async () => {
    const ignition = JSON.parse(await readFile(sources.ignition, "utf8")) as IgnitionDoc;
    const config = ignition.storage.files.find((f) => f.path === "/etc/flexnode/agent.json")!;
    expect(config.mode).toBe(0o600);
    const parsed = AgentConfigFileSchema.parse(JSON.parse(decodeDataUrl(config.contents.source, config.contents.compression).toString("utf8")));
    expect(parseEnrolmentUrl(parsed.enrolmentUrl!).serviceUrl).toBe("https://flexnode.example.com");
    expect(ignition.systemd.units.find((u) => u.name === onNode.unitName)?.enabled).toBe(true);
  });

  it("the build's rendering names this image and carries its sha512, and the link points at it", async () => {
    const rendered = JSON.parse(await readFile(join(outputs.flatcarDir, "flexnode.ign"), "utf8")) as IgnitionDoc;
    const name = imageFileName(info.version, info.arch);
    const image = rendered.storage.files.find((f) => f.path.endsWith(".raw"))!;
    expect(image.path).toBe(`/opt/extensions/flexnode-agent/${name}`);
    expect(image.contents.source.endsWith(`/${name}`)).toBe(true);
    expect(image.contents.verification?.hash).toBe(`sha512-${await fileDigest(outputs.sysext, "sha512")}`);
    expect(rendered.storage.links).toEqual([{ path: `/etc/extensions/${onNode.extensionName}.raw`, hard: false, target: image.path }]);
  });
});
