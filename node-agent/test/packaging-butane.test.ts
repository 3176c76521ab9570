/**
 * The Butane-subset transpiler: it must produce what Butane produces for flatcar 1.0.0 (Ignition 3.3.0, Ignition's
 * field order, the shortest data-URL encoding, Go's JSON escaping), refuse what it does not implement by name, and
 * emit configs ignition-validate accepts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ButaneError, decodeDataUrl, inlineResource, parseButane, toIgnition, transpile } from "../packaging/flatcar/butane.js";
import { renderRelease } from "../packaging/flatcar/release.js";
import { haveTool, runTool } from "../packaging/run-tool.js";

const HEADER = "variant: flatcar\nversion: 1.0.0\n";
let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "flexnode-butane-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

type Doc = {
  storage: { files: { path: string; mode?: number; contents: { compression?: string; source: string } }[]; links: object[]; directories: object[] };
  systemd: { units: object[] };
};

describe("Butane subset → Ignition 3.3.0", () => {
  const everything = `${HEADER}storage:
  directories:
    - path: /var/lib/flexnode
      mode: 0700
  files:
    - path: /etc/a.conf
      mode: 0644
      overwrite: true
      contents:
        inline: "hello-world.conf\\n"
    - path: /opt/x.raw
      contents:
        source: https://example.com/x.raw
        verification:
          hash: sha256-${"ab".repeat(32)}
  links:
    - path: /etc/extensions/x.raw
      target: /opt/x.raw
      hard: false
systemd:
  units:
    - name: a.service
      enabled: true
      contents: "[Service]\\nExecStart=/bin/sh -c 'test 1 < 2 && test 2 > 1'\\n[Install]\\nWantedBy=multi-user.target\\n"
      dropins:
        - name: 10-a.conf
          contents: "[Unit]\\nAfter=b.service\\n"
    - name: b.service
      mask: true
`;

  it("reads modes as YAML 1.1 octal and writes fields in Ignition's order", () => {
    const doc = toIgnition(parseButane(everything)) as unknown as Doc & { ignition: { version: string } };
    expect(doc.ignition).toEqual({ version: "3.3.0" });
    expect(Object.keys(doc)).toEqual(["ignition", "storage", "systemd"]);
    expect(Object.keys(doc.storage)).toEqual(["directories", "files", "links"]);
    expect(doc.storage.directories).toEqual([{ path: "/var/lib/flexnode", mode: 0o700 }]);
    expect(Object.keys(doc.storage.files[0]!)).toEqual(["overwrite", "path", "contents", "mode"]);
    expect(doc.storage.files[0]!.mode).toBe(420);
    expect(doc.storage.files[1]).toEqual({
      path: "/opt/x.raw",
      contents: { source: "https://example.com/x.raw", verification: { hash: `sha256-${"ab".repeat(32)}` } },
    });
    expect(doc.storage.links).toEqual([{ path: "/etc/extensions/x.raw", hard: false, target: "/opt/x.raw" }]);
    expect(doc.systemd.units.map((u) => Object.keys(u))).toEqual([
      ["contents", "dropins", "enabled", "name"],
      ["mask", "name"],
    ]);
  });

  it("escapes <, > and & the way Go's encoder does, and the data URL decodes to the inline text", () => {
    const json = transpile(everything);
    expect(json).toContain("\\u003c");
    expect(json).not.toMatch(/[<>&]/);
    expect(json).toContain("test 1 \\u003c 2 \\u0026\\u0026 test 2 \\u003e 1");
    const doc = JSON.parse(json) as Doc & { systemd: { units: { contents?: string }[] } };
    expect(doc.systemd.units[0]!.contents).toContain("test 1 < 2 && test 2 > 1");
    const file = doc.storage.files[0]!;
    expect(file.contents.compression).toBe("");
    expect(file.contents.source).toBe("data:,hello-world.conf%0A");
    expect(decodeDataUrl(file.contents.source, file.contents.compression).toString()).toBe("hello-world.conf\n");
    expect(json.endsWith("}\n")).toBe(true);
  });

  it("picks the shortest encoding: escaped text, base64 for non-ASCII, gzip for repetitive contents", () => {
    expect(inlineResource("plain-text_1.0").source).toBe("data:,plain-text_1.0");
    const accented = "ééééééééééé";
    const b64 = inlineResource(accented);
    expect(b64.source.startsWith("data:;base64,")).toBe(true);
    expect(decodeDataUrl(b64.source, b64.compression).toString()).toBe(accented);
    const repetitive = `${"ExecStart=/usr/bin/true\n".repeat(200)}`;
    const gz = inlineResource(repetitive);
    expect(gz.compression).toBe("gzip");
    expect(gz.source.length).toBeLessThan(repetitive.length / 4);
    expect(decodeDataUrl(gz.source, gz.compression).toString()).toBe(repetitive);
  });

  it.each([
    ["passwd:\n  users: []\n", "passwd"],
    ["storage:\n  disks: []\n", "storage.disks"],
    ["systemd:\n  units:\n    - name: a.service\n      requires: []\n", "systemd.units.0.requires"],
    ["storage:\n  files:\n    - path: /a\n      contents:\n        local: a\n", "storage.files.0.contents.local"],
  ])("refuses what it does not implement, by name (%#)", (body, field) => {
    expect(() => parseButane(HEADER + body)).toThrow(ButaneError);
    expect(() => parseButane(HEADER + body)).toThrow(`${field}: not supported by this transpiler`);
  });

  it("refuses other variants, relative paths, both inline and source, and malformed hashes", () => {
    expect(() => parseButane("variant: fcos\nversion: 1.5.0\n")).toThrow(/^variant:/);
    expect(() => parseButane(`${HEADER}storage:\n  files:\n    - path: etc/a\n`)).toThrow("storage.files.0.path: must be an absolute path");
    expect(() => parseButane(`${HEADER}storage:\n  files:\n    - path: /a\n      contents:\n        inline: x\n        source: https://e.com/a\n`)).toThrow(
      "exactly one of inline and source",
    );
    expect(() =>
      parseButane(
        `${HEADER}storage:\n  files:\n    - path: /a\n      contents:\n        source: https://e.com/a\n        verification:\n          hash: md5-00\n`,
      ),
    ).toThrow("storage.files.0.contents.verification.hash");
  });

  it("emits configs ignition-validate accepts", async (ctx) => {
    if (!(await haveTool("ignition-validate", ["--version"]))) ctx.skip("ignition-validate is not installed (Debian package ignition)");
    const file = join(scratch, "everything.ign");
    await writeFile(file, transpile(everything));
    expect(await runTool("ignition-validate", [file], { allowFailure: true })).toEqual({ code: 0, stdout: "", stderr: "" });
  });
});

describe("release rendering", () => {
  const example = `${HEADER}# the image
storage:
  files:
    - path: /opt/extensions/flexnode-agent/flexnode-agent-0.1.0-x86-64.raw # versioned
      mode: 0644
      contents:
        source: https://dl.example.com/flexnode-agent-0.1.0-x86-64.raw
        verification:
          hash: sha512-${"0".repeat(128)}
  links:
    - path: /etc/extensions/flexnode-agent.raw
      target: /opt/extensions/flexnode-agent/flexnode-agent-0.1.0-x86-64.raw
`;

  it("names the built image, carries its hash, moves the link, and keeps comments and octal modes", () => {
    const rendered = renderRelease(example, { imageFile: "flexnode-agent-0.2.0-arm64.raw", sha512: "f".repeat(128) });
    expect(rendered).toContain("# the image");
    expect(rendered).toContain("# versioned");
    expect(rendered).toContain("mode: 0644");
    const config = parseButane(rendered);
    expect(config.storage?.files?.[0]).toMatchObject({
      path: "/opt/extensions/flexnode-agent/flexnode-agent-0.2.0-arm64.raw",
      mode: 0o644,
      contents: { source: "https://dl.example.com/flexnode-agent-0.2.0-arm64.raw", verification: { hash: `sha512-${"f".repeat(128)}` } },
    });
    expect(config.storage?.links?.[0]?.target).toBe("/opt/extensions/flexnode-agent/flexnode-agent-0.2.0-arm64.raw");
  });

  it("refuses a document without exactly one image entry", () => {
    expect(() => renderRelease(`${HEADER}storage:\n  files:\n    - path: /etc/a\n`, { imageFile: "x.raw", sha512: "0".repeat(128) })).toThrow(/found 0/);
  });
});
