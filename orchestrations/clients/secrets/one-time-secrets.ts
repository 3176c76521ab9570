/**
 * One-time secrets for nodes (the bootstrap kubeconfig): stored encrypted in the registry (AES-256-GCM with the
 * service's data key, the node id and reference as associated data so a ciphertext cannot be moved to another slot),
 * handed to the node once over the signed node API, and deleted on that read or on compensation. Saga history and
 * queue messages carry only the reference.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { Registry } from "../registry/registry.js";

export interface SealedSecret {
  iv: string;
  ciphertext: string;
  tag: string;
  expiresAt: string;
  offered: boolean;
}

export class OneTimeSecrets {
  constructor(
    private readonly registry: Registry,
    /** 32-byte data key (Key Vault reference in Azure). */
    private readonly key: Buffer,
  ) {
    if (key.length !== 32) throw new RangeError("the secrets key must be 32 bytes");
  }

  /**
   * Stores `value` under (node, ref) unless something is stored there already; returns what is stored. `offered`:
   * the node's plan fetches this reference, so the node may take it; otherwise only the service reads it.
   */
  async putIfAbsent(nodeId: string, ref: string, value: string, expiresAt: Date, options: { offered: boolean }): Promise<string> {
    if (await this.registry.secrets.put(nodeId, ref, this.seal(nodeId, ref, value, expiresAt, options))) return value;
    // Stored before (a retried activity) or by a concurrent writer: theirs is the one kept. Inserting first, not
    // reading first, saves the first run a read.
    return (await this.peek(nodeId, ref))!;
  }

  /**
   * Replaces what is stored under (node, ref) with `value` if it is still `expected`; returns what is stored after.
   * A concurrent writer that replaced it first wins, as with putIfAbsent, so every caller goes on with the same value.
   */
  async replace(nodeId: string, ref: string, expected: string, value: string, expiresAt: Date, options: { offered: boolean }): Promise<string> {
    const stored = await this.registry.secrets.getVersioned(nodeId, ref);
    if (!stored) return this.putIfAbsent(nodeId, ref, value, expiresAt, options);
    const current = this.open(nodeId, ref, stored.sealed);
    if (current !== expected) return current;
    if (await this.registry.secrets.replaceIf(nodeId, ref, this.seal(nodeId, ref, value, expiresAt, options), stored.etag)) return value;
    return (await this.peek(nodeId, ref)) ?? this.putIfAbsent(nodeId, ref, value, expiresAt, options);
  }

  /** Reads without consuming (the saga's own idempotent re-reads). */
  async peek(nodeId: string, ref: string): Promise<string | undefined> {
    return (await this.peekEntry(nodeId, ref))?.value;
  }

  /** The value and its expiry, without consuming it. */
  async peekEntry(nodeId: string, ref: string): Promise<{ value: string; expiresAt: Date } | undefined> {
    const sealed = await this.registry.secrets.get(nodeId, ref);
    return sealed ? { value: this.open(nodeId, ref, sealed), expiresAt: new Date(sealed.expiresAt) } : undefined;
  }

  /**
   * The node's read: returns an offered value once and deletes it; an expired secret is deleted and not returned, one
   * never offered to the node is not touched.
   */
  async take(nodeId: string, ref: string, now: Date): Promise<string | undefined> {
    const taken = await this.registry.secrets.takeOffered(nodeId, ref);
    if (!taken || Date.parse(taken.expiresAt) <= now.getTime()) return undefined;
    return this.open(nodeId, ref, taken);
  }

  async remove(nodeId: string, ref: string): Promise<boolean> {
    return this.registry.secrets.delete(nodeId, ref);
  }

  private seal(nodeId: string, ref: string, value: string, expiresAt: Date, options: { offered: boolean }): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(`${nodeId}/${ref}`));
    const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
    return {
      iv: iv.toString("base64"),
      ciphertext: ciphertext.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
      expiresAt: expiresAt.toISOString(),
      offered: options.offered,
    };
  }

  private open(nodeId: string, ref: string, sealed: Omit<SealedSecret, "offered">): string {
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(sealed.iv, "base64"));
    decipher.setAAD(Buffer.from(`${nodeId}/${ref}`));
    decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, "base64")), decipher.final()]).toString("utf8");
  }
}
