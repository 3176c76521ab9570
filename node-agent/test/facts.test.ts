import type { NetworkInterfaceInfo } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { NodeFactsSchema } from "../../contract/node-facts.js";
import { FactsError, gatherFacts, type SystemInfo } from "../src/facts.js";
import { isReadOnly, mountOf, parseMountinfo } from "../src/mountinfo.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";

const iface = (address: string, internal = false): NetworkInterfaceInfo =>
  ({
    address,
    internal,
    family: address.includes(":") ? "IPv6" : "IPv4",
    netmask: "255.255.255.0",
    mac: "00:00:00:00:00:00",
    cidr: null,
  }) as NetworkInterfaceInfo;

function system(overrides: Partial<SystemInfo> = {}): SystemInfo {
  return {
    hostname: () => "from-os-module",
    arch: () => "x64",
    release: () => "6.1.0-test",
    cpus: () => 2,
    totalmem: () => 2 * 1024 ** 3,
    networkInterfaces: () => ({
      lo: [iface("127.0.0.1", true), iface("::1", true)],
      eth0: [iface("192.0.2.10"), iface("fe80::1%eth0")],
      eth1: [iface("2001:db8::5")],
    }),
    ...overrides,
  };
}

let root: ScratchRoot;
afterEach(async () => {
  await root.remove();
});

describe("node facts", () => {
  it("describes a Flatcar machine: read-only /usr, flatcar marker, DMI UUID, kernel, memory and CPUs from the host files", async () => {
    root = await scratchRoot(HOSTS.flatcar);
    const { facts, notes } = await gatherFacts({ root: root.dir, system: system() });
    expect(NodeFactsSchema.parse(facts)).toEqual(facts);
    expect(facts).toEqual({
      hostname: "edge-flatcar-01",
      machineId: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
      smbiosUuid: "4c4c4544-0051-3010-8052-b4c04f564433",
      osRelease: { id: "flatcar", versionId: "4081.2.0", prettyName: "Flatcar Container Linux by Kinvolk 4081.2.0 (Oklo)" },
      arch: "amd64",
      kernel: "6.6.60-flatcar",
      cpus: 4,
      memoryBytes: 8131468 * 1024,
      addresses: ["192.0.2.10", "fe80::1", "2001:db8::5"],
      immutable: { readOnlyUsr: true, ostree: false, flatcar: true, kairos: false, bootc: false },
    });
    expect(notes).toEqual([]);
  });

  it("describes Ubuntu: os-release from /usr/lib, writable /usr, the firmware placeholder UUID dropped, the rest from the OS", async () => {
    root = await scratchRoot(HOSTS.ubuntu);
    const { facts, notes } = await gatherFacts({ root: root.dir, system: system({ arch: () => "arm64" }) });
    expect(NodeFactsSchema.safeParse(facts).success).toBe(true);
    expect(facts).toMatchObject({
      osRelease: { id: "ubuntu", versionId: "24.04", prettyName: "Ubuntu 24.04.1 LTS" },
      arch: "arm64",
      cpus: 2,
      memoryBytes: 2 * 1024 ** 3,
    });
    expect(facts.smbiosUuid).toBeUndefined();
    expect(facts.immutable).toEqual({ readOnlyUsr: false, ostree: false, flatcar: false, kairos: false, bootc: false });
    expect(notes.join("\n")).toContain("03000200-0400-0500-0006-000700080009 is a firmware placeholder");
  });

  it("describes Fedora CoreOS: ostree-booted, /usr a read-only bind mount, no DMI", async () => {
    root = await scratchRoot(HOSTS.fedoraCoreos);
    const { facts, notes } = await gatherFacts({ root: root.dir, system: system() });
    expect(NodeFactsSchema.safeParse(facts).success).toBe(true);
    expect(facts.osRelease).toEqual({ id: "fedora", versionId: "41", variantId: "coreos", prettyName: "Fedora CoreOS 41.20241109.3.0" });
    expect(facts.immutable).toEqual({ readOnlyUsr: true, ostree: true, flatcar: false, kairos: false, bootc: false });
    expect("smbiosUuid" in facts).toBe(false);
    expect(notes.join("\n")).toContain("no DMI product UUID");
  });

  it("recognises bootc and Kairos markers", async () => {
    root = await scratchRoot({ ...HOSTS.fedoraCoreos, "/usr/lib/bootc/kargs.d/10-flexnode.toml": "kargs = []\n" });
    expect((await gatherFacts({ root: root.dir, system: system() })).facts.immutable).toMatchObject({ ostree: true, bootc: true });
    await root.remove();
    root = await scratchRoot({ ...HOSTS.ubuntu, "/etc/kairos-release": 'KAIROS_VERSION="v3.2.1"\n' });
    expect((await gatherFacts({ root: root.dir, system: system() })).facts.immutable.kairos).toBe(true);
  });

  it("names the field when the machine cannot be described", async () => {
    root = await scratchRoot({ ...HOSTS.ubuntu, "/etc/machine-id": "uninitialized\n" });
    await expect(gatherFacts({ root: root.dir, system: system() })).rejects.toMatchObject({ code: "facts_unreadable", field: "machineId" });
    await root.remove();
    root = await scratchRoot(HOSTS.ubuntu);
    await expect(gatherFacts({ root: root.dir, system: system({ arch: () => "riscv64" }) })).rejects.toThrow(FactsError);
    await expect(gatherFacts({ root: root.dir, system: system({ arch: () => "riscv64" }) })).rejects.toThrow(/^arch: riscv64 is not supported/);
    await root.write("/proc/sys/kernel/hostname", "not_a_hostname\n");
    await expect(gatherFacts({ root: root.dir, system: system() })).rejects.toMatchObject({ field: "hostname" });
  });
});

describe("mountinfo", () => {
  it("finds the deepest, latest mount covering a path and reads ro from mount or superblock options", () => {
    const entries = parseMountinfo(
      [
        "22 1 253:0 / / rw,relatime - ext4 /dev/vda9 rw",
        "30 22 0:40 / /usr/local rw - tmpfs tmpfs rw",
        "31 22 254:0 / /usr rw,relatime - ext4 /dev/mapper/usr ro",
        "40 22 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw",
      ].join("\n"),
    );
    expect(mountOf(entries, "/usr")?.mountPoint).toBe("/usr");
    expect(isReadOnly(mountOf(entries, "/usr")!)).toBe(true);
    expect(mountOf(entries, "/usrx")?.mountPoint).toBe("/");
    expect(mountOf(entries, "/mnt/with space/x")?.mountPoint).toBe("/mnt/with space");
  });
});
