/** The sandbox's artifact mirror and timer schedules: what the catalog pins is what is served, ranges, tampering. */
import { createHash } from "node:crypto";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactCatalogSchema } from "../../orchestrations/node-plan/artifact-catalog.js";
import { startArtifactServer, type ArtifactServer } from "./artifact-server.js";
import { nextOccurrence, parseNcrontab } from "./timer-triggers.js";

let mirror: ArtifactServer;
beforeAll(async () => {
  mirror = await startArtifactServer({ kubernetesVersion: "1.31.2" });
});
afterAll(async () => {
  await mirror.close();
});

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: mirror.ca, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("artifact mirror", () => {
  it("publishes a catalog the service accepts, and serves exactly the pinned bytes over TLS from its own CA", async () => {
    expect(ArtifactCatalogSchema.parse(mirror.catalog)).toEqual(mirror.catalog);
    const { url, sha256 } = mirror.catalog.cniPlugins.arm64!;
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(sha(res.body)).toBe(sha256);
    expect(res.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });

  it("serves ranges for resumed downloads", async () => {
    const { url, sha256 } = mirror.catalog.containerd.amd64!;
    const whole = (await get(url)).body;
    const tail = await get(url, { range: "bytes=10-" });
    expect(tail.status).toBe(206);
    expect(tail.headers["content-range"]).toBe(`bytes 10-${whole.length - 1}/${whole.length}`);
    expect(sha(Buffer.concat([whole.subarray(0, 10), tail.body]))).toBe(sha256);
    expect((await get(url, { range: `bytes=${whole.length}-` })).status).toBe(416);
  });

  it("once told to, serves a tampered artifact of the same length", async () => {
    const { url, sha256 } = mirror.catalog.sysext.containerd.arm64!;
    const before = (await get(url)).body;
    mirror.corrupt(mirror.nameOf(url)!);
    const after = (await get(url)).body;
    expect(after.length).toBe(before.length);
    expect(sha(after)).not.toBe(sha256);
  });
});

describe("NCRONTAB schedules of timer triggers", () => {
  it("finds the next occurrence of the sweeper's schedule", () => {
    const every15 = parseNcrontab("0 */15 * * * *")!;
    expect(new Date(nextOccurrence(every15, Date.UTC(2030, 0, 1, 10, 7, 30))!).toISOString()).toBe("2030-01-01T10:15:00.000Z");
    expect(new Date(nextOccurrence(every15, Date.UTC(2030, 0, 1, 10, 15, 0))!).toISOString()).toBe("2030-01-01T10:30:00.000Z");
    const weekdays = parseNcrontab("30 5 9 * * 1-5")!;
    // 2030-01-05 is a Saturday: the next match is Monday 09:05:30.
    expect(new Date(nextOccurrence(weekdays, Date.UTC(2030, 0, 5, 12))!).toISOString()).toBe("2030-01-07T09:05:30.000Z");
    expect(parseNcrontab("*/5 * * * *")).toBeUndefined();
    expect(parseNcrontab("0 61 * * * *")).toBeUndefined();
  });
});
