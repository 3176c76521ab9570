/**
 * The emulated Entra ID directory as ARM's role-assignment service sees it: which principals exist, when they were
 * created (a new service principal is invisible to RBAC until it has replicated) and which have been deleted.
 */
import type { Clock } from "../support/index.js";
import type { PrincipalType } from "./credential.js";

export type PrincipalOrigin = "fixture" | "caller" | "machine";

export interface DirectoryPrincipal {
  id: string;
  type: PrincipalType;
  origin: PrincipalOrigin;
  /** Emulated creation time; `-Infinity` for principals that exist "since forever". */
  createdAt: number;
  deletedAt?: number;
  /** Resource whose system-assigned identity this is, for machine identities. */
  resourceId?: string;
}

export class Directory {
  private readonly principals = new Map<string, DirectoryPrincipal>();

  constructor(
    private readonly clock: Clock,
    readonly replicationDelayMs: number,
  ) {}

  add(principal: DirectoryPrincipal): DirectoryPrincipal {
    this.principals.set(principal.id.toLowerCase(), principal);
    return principal;
  }

  /** Callers authenticated with a token obviously exist; they are known from their first request on. */
  noteCaller(id: string, type: PrincipalType): void {
    if (!this.principals.has(id.toLowerCase())) {
      this.add({ id, type, origin: "caller", createdAt: Number.NEGATIVE_INFINITY });
    }
  }

  get(id: string): DirectoryPrincipal | undefined {
    return this.principals.get(id.toLowerCase());
  }

  /** Whether RBAC can resolve the principal now: it exists, is not deleted and has replicated. */
  isResolvable(id: string): boolean {
    const p = this.get(id);
    if (!p || p.deletedAt !== undefined) return false;
    return this.clock.now() - p.createdAt >= this.replicationDelayMs;
  }

  markDeleted(id: string): void {
    const p = this.get(id);
    if (p && p.deletedAt === undefined) p.deletedAt = this.clock.now();
  }

  list(): DirectoryPrincipal[] {
    return [...this.principals.values()];
  }

  /** Forgets everything but the fixture principals. */
  reset(): void {
    for (const [key, p] of this.principals) {
      if (p.origin !== "fixture") this.principals.delete(key);
      else delete p.deletedAt;
    }
  }
}
