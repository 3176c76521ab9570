/**
 * The node's identity: an Ed25519 key generated on the node, once, and never sent anywhere. The service knows it by
 * its public key (registered at enrolment) and its RFC 7638 thumbprint, which names the key in every signature.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { exportPublicKey, keyIdOf } from "../../contract/keys.js";
import { agentFiles } from "./agent-files.js";
import { assertPrivate, createPrivateFileOnce, ensurePrivateDir } from "./private-files.js";

export interface NodeIdentity {
  privateKey: KeyObject;
  /** Raw 32-byte public key, unpadded base64url, as the contract puts it on the wire. */
  publicKey: string;
  keyId: string;
  /** True when this call generated the key. */
  created: boolean;
}

export class IdentityError extends Error {
  readonly code = "identity_unusable";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "IdentityError";
  }
}

function fromPem(pem: string, path: string, created: boolean): NodeIdentity {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (cause) {
    throw new IdentityError(`${path} is not a readable private key; move it away to have a new identity generated (the node must then enrol again)`, { cause });
  }
  if (privateKey.asymmetricKeyType !== "ed25519")
    throw new IdentityError(`${path} holds a ${privateKey.asymmetricKeyType ?? "non-asymmetric"} key, not Ed25519`);
  return { privateKey, publicKey: exportPublicKey(privateKey), keyId: keyIdOf(privateKey), created };
}

/** Loads the identity; undefined when none was created yet. Refuses loose permissions on the key or its directory. */
export async function loadIdentity(root: string): Promise<NodeIdentity | undefined> {
  const files = agentFiles(root);
  let pem: string;
  try {
    await assertPrivate(files.identityDir, "directory");
    await assertPrivate(files.identityKey, "file");
    pem = await readFile(files.identityKey, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return fromPem(pem, files.identityKey, false);
}

/** Loads the identity, generating it on first use. Safe to call concurrently and repeatedly: one key, ever. */
export async function loadOrCreateIdentity(root: string): Promise<NodeIdentity> {
  const existing = await loadIdentity(root);
  if (existing) return existing;
  const files = agentFiles(root);
  await ensurePrivateDir(files.identityDir);
  const { privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const created = await createPrivateFileOnce(files.identityKey, pem);
  if (created) return fromPem(pem, files.identityKey, true);
  const raced = await loadIdentity(root);
  if (!raced) throw new IdentityError(`${files.identityKey} vanished while it was being created`);
  return raced;
}
