import { chmod, readFile, stat } from "node:fs/promises";
import { createPublicKey, sign, verify } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { importPublicKey, keyIdOf } from "../../contract/keys.js";
import { agentFiles } from "../src/agent-files.js";
import { loadIdentity, loadOrCreateIdentity } from "../src/identity.js";
import { InsecurePermissionsError } from "../src/private-files.js";
import { scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";

let root: ScratchRoot;
afterEach(async () => {
  await root.remove();
});

describe("node identity", () => {
  it("is created once, 0600 in a 0700 directory, and loaded unchanged afterwards", async () => {
    root = await scratchRoot();
    expect(await loadIdentity(root.dir)).toBeUndefined();
    const first = await loadOrCreateIdentity(root.dir);
    expect(first.created).toBe(true);
    const files = agentFiles(root.dir);
    expect((await stat(files.identityKey)).mode & 0o777).toBe(0o600);
    expect((await stat(files.identityDir)).mode & 0o777).toBe(0o700);
    const pem = await readFile(files.identityKey, "utf8");

    const again = await loadOrCreateIdentity(root.dir);
    expect(again.created).toBe(false);
    expect(again.publicKey).toBe(first.publicKey);
    expect(await readFile(files.identityKey, "utf8")).toBe(pem);

    // The public key is the contract's wire form and the key id its RFC 7638 thumbprint: it verifies the private key's signatures.
    expect(again.keyId).toBe(keyIdOf(first.publicKey));
    const signature = sign(null, Buffer.from("hello"), again.privateKey);
    expect(verify(null, Buffer.from("hello"), importPublicKey(first.publicKey), signature)).toBe(true);
    expect(createPublicKey(again.privateKey).asymmetricKeyType).toBe("ed25519");
  });

  it("ends with one key when several agents create it at once", async () => {
    root = await scratchRoot();
    const all = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(root.dir)));
    expect(new Set(all.map((i) => i.keyId)).size).toBe(1);
    expect(all.filter((i) => i.created)).toHaveLength(1);
  });

  it("refuses a key file or directory that others can read", async () => {
    root = await scratchRoot();
    await loadOrCreateIdentity(root.dir);
    const files = agentFiles(root.dir);

    await chmod(files.identityKey, 0o644);
    await expect(loadOrCreateIdentity(root.dir)).rejects.toThrow(InsecurePermissionsError);
    await expect(loadIdentity(root.dir)).rejects.toThrow(/node-key\.pem is readable or writable by other users \(mode 0644\)/);
    await chmod(files.identityKey, 0o600);

    await chmod(files.identityDir, 0o755);
    await expect(loadIdentity(root.dir)).rejects.toMatchObject({ code: "insecure_permissions", path: files.identityDir, mode: 0o755 });
    await chmod(files.identityDir, 0o700);
    expect((await loadIdentity(root.dir))?.created).toBe(false);
  });

  it("refuses a key that is not Ed25519", async () => {
    root = await scratchRoot();
    const { generateKeyPairSync } = await import("node:crypto");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    await root.write("/var/lib/flexnode/identity/node-key.pem", rsa, 0o600);
    await chmod(agentFiles(root.dir).identityDir, 0o700);
    await expect(loadIdentity(root.dir)).rejects.toThrow(/holds a rsa key, not Ed25519/);
  });
});
