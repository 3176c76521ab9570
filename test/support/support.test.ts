/** The shared support's own guarantees: a replayable PRNG, and which certificates the test CA vouches for. */
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { caIssuedCertificate, seededRandom, selfSignedCertificate } from "./index.js";

describe("seededRandom", () => {
  it("replays the same sequence from the same seed, in [0, 1)", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const first = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(first);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(43)()).not.toBe(first[0]);
  });
});

describe("loopback certificates", () => {
  it("issues server certificates from one test CA per process, for loopback and the names asked for", async () => {
    const plain = await caIssuedCertificate();
    const named = await caIssuedCertificate(["Flexnode.servicebus.windows.net"]);
    expect(named.ca).toBe(plain.ca);
    expect(await caIssuedCertificate()).toBe(plain);
    const ca = new X509Certificate(plain.ca);
    const leaf = new X509Certificate(named.cert);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(leaf.checkHost("flexnode.servicebus.windows.net")).toBe("flexnode.servicebus.windows.net");
  });

  it("makes a self-signed certificate the test CA did not issue", async () => {
    const self = await selfSignedCertificate();
    const leaf = new X509Certificate(self.cert);
    expect(self.ca).toBe(self.cert);
    expect(leaf.issuer).toBe(leaf.subject);
    expect(leaf.verify(leaf.publicKey)).toBe(true);
    expect(leaf.checkIssued(new X509Certificate((await caIssuedCertificate()).ca))).toBe(false);
  });
});
