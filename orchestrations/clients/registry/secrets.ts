/**
 * Sealed one-time secrets for nodes. Table `secrets`: PK node id, RK the secret's reference; the row holds only what
 * orchestrations/clients/secrets sealed (AES-256-GCM iv, ciphertext, tag), the expiry, and `offered`: whether the
 * node's plan fetches it. Rows the service keeps for itself (the raw bootstrap token, kept so a retried activity
 * reuses it) are not offered, and the node's take never sees them. The first writer's secret is the one stored; a
 * stored secret is replaced only under its ETag (the service's raw token, when its id turns out taken in the cluster);
 * taking it is a read then a delete under the row's ETag, so of two concurrent takers exactly one gets it.
 */
import type { TableClient } from "@azure/data-tables";
import { deleteIfPresent, insertOnce, read, status, type Entity } from "./table-rows.js";

export interface SealedSecretRow {
  iv: string;
  ciphertext: string;
  tag: string;
  expiresAt: string;
  /** The node may take it (its plan fetches it); absent on older rows, which count as not offered. */
  offered?: boolean;
}

const sealedOf = (e: Entity): SealedSecretRow => ({
  iv: e.iv as string,
  ciphertext: e.ciphertext as string,
  tag: e.tag as string,
  expiresAt: e.expiresAt as string,
  offered: e.offered === true,
});

export class SecretTable {
  constructor(private readonly table: TableClient) {}

  /** Stores a sealed secret; false if one is stored under (node, ref) already. */
  put(nodeId: string, ref: string, sealed: SealedSecretRow): Promise<boolean> {
    return insertOnce(this.table, { partitionKey: nodeId, rowKey: ref, ...sealed });
  }

  async get(nodeId: string, ref: string): Promise<SealedSecretRow | undefined> {
    return (await this.getVersioned(nodeId, ref))?.sealed;
  }

  /** The stored secret and the ETag a conditional replace names. */
  async getVersioned(nodeId: string, ref: string): Promise<{ sealed: SealedSecretRow; etag: string } | undefined> {
    const e = await read(this.table, nodeId, ref);
    return e ? { sealed: sealedOf(e), etag: e.etag } : undefined;
  }

  /** Replaces the stored secret if it is still the version `etag` names; false when it changed or is gone. */
  async replaceIf(nodeId: string, ref: string, sealed: SealedSecretRow, etag: string): Promise<boolean> {
    try {
      await this.table.updateEntity({ partitionKey: nodeId, rowKey: ref, ...sealed }, "Replace", { etag });
      return true;
    } catch (error) {
      if (status(error) === 404 || status(error) === 412) return false;
      throw error;
    }
  }

  /**
   * The node's read: an offered secret, read and deleted under the row's ETag (of two concurrent takers, exactly one
   * gets it). A row not offered to the node is left alone and answers as absent.
   */
  async takeOffered(nodeId: string, ref: string): Promise<SealedSecretRow | undefined> {
    const e = await read(this.table, nodeId, ref);
    if (!e || e.offered !== true) return undefined;
    try {
      await this.table.deleteEntity(nodeId, ref, { etag: e.etag });
    } catch (error) {
      if (status(error) === 404 || status(error) === 412) return undefined;
      throw error;
    }
    return sealedOf(e);
  }

  /** False when nothing was stored there. */
  delete(nodeId: string, ref: string): Promise<boolean> {
    return deleteIfPresent(this.table, nodeId, ref);
  }
}
