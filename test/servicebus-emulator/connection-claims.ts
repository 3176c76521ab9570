/**
 * The claims a connection has put through CBS, by audience. A newer put-token for the same audience replaces the
 * older claim (that is how a client renews a link's authorization); links are authorized by the most specific
 * unexpired claim whose audience covers their address and which carries the right they need.
 */
import { grants, type AccessRight } from "./access-rules.js";
import type { Claim } from "./token-check.js";

export interface AudienceClaim {
  /** Lower-case audience path relative to the namespace, e.g. `node-7/$management`; "" for the namespace root. */
  key: string;
  audienceUri: string;
  claim: Claim;
}

export class ConnectionClaims {
  private readonly byAudience = new Map<string, AudienceClaim>();

  put(segments: readonly string[], audienceUri: string, claim: Claim): void {
    const key = segments.join("/");
    this.byAudience.set(key, { key, audienceUri, claim });
  }

  get(key: string): AudienceClaim | undefined {
    return this.byAudience.get(key);
  }

  /** The claim to open a link on `segments` with, or undefined; `right` undefined accepts any right. */
  authorize(segments: readonly string[], right: AccessRight | undefined, nowMs: number): AudienceClaim | undefined {
    return this.covering(segments, nowMs).find((c) => right === undefined || grants(c.claim.rights, right));
  }

  /** Whether some unexpired claim covers `segments` at all (to tell "no token" from "token without the right"). */
  hasAny(segments: readonly string[], nowMs: number): boolean {
    return this.covering(segments, nowMs).length > 0;
  }

  /** Drops expired claims; returns their keys. */
  removeExpired(nowMs: number): string[] {
    const expired: string[] = [];
    for (const [key, entry] of this.byAudience) {
      if (entry.claim.expiresAtMs <= nowMs) {
        this.byAudience.delete(key);
        expired.push(key);
      }
    }
    return expired;
  }

  private covering(segments: readonly string[], nowMs: number): AudienceClaim[] {
    const out: AudienceClaim[] = [];
    for (let n = segments.length; n >= 0; n--) {
      const entry = this.byAudience.get(segments.slice(0, n).join("/"));
      if (entry && entry.claim.expiresAtMs > nowMs) out.push(entry);
    }
    return out;
  }
}
