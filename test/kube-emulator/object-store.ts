/**
 * Storage for one resource type, etcd-like: every write takes the next value of a revision shared by all types (so
 * `resourceVersion` only grows, also across reset()), objects get a uid and a creationTimestamp from the emulator's
 * clock, and callers only ever see copies.
 */
import type { Clock } from "../support/index.js";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** The part of an object a caller supplies; the store fills in uid, resourceVersion and creationTimestamp. */
export interface NewObject {
  apiVersion: string;
  kind: string;
  metadata: Omit<ObjectMeta, "uid" | "resourceVersion" | "creationTimestamp">;
  [field: string]: unknown;
}

export class Revisions {
  private value = 0;
  private compactedAt = 0;

  next(): string {
    this.value += 1;
    return String(this.value);
  }

  get current(): string {
    return String(this.value);
  }

  /** etcd's compaction: revisions before now can no longer be read, so list pages started before it expire. */
  compact(): void {
    this.compactedAt = this.value;
  }

  /** Whether a read at `revision` needs history that compaction removed. */
  compacted(revision: number): boolean {
    return revision < this.compactedAt;
  }
}

export function rfc3339Seconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z");
}

export class ObjectStore {
  private readonly objects = new Map<string, KubeObject>();

  constructor(
    private readonly revisions: Revisions,
    private readonly clock: Clock,
    private readonly newUid: () => string,
  ) {}

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.objects.get(key(namespace, name));
    return found && structuredClone(found);
  }

  /** Sorted by namespace then name, which is also the order list pages are cut in. */
  list(namespace?: string): KubeObject[] {
    return [...this.objects.values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .sort((a, b) => key(a.metadata.namespace, a.metadata.name).localeCompare(key(b.metadata.namespace, b.metadata.name)))
      .map((o) => structuredClone(o));
  }

  create(object: NewObject): KubeObject {
    const stored: KubeObject = {
      ...structuredClone(object),
      metadata: {
        ...structuredClone(object.metadata),
        uid: this.newUid(),
        resourceVersion: this.revisions.next(),
        creationTimestamp: rfc3339Seconds(this.clock.now()),
      },
    };
    this.objects.set(key(stored.metadata.namespace, stored.metadata.name), stored);
    return structuredClone(stored);
  }

  /** Replaces an existing object, keeping its identity (uid, creationTimestamp) and bumping its resourceVersion. */
  replace(existing: KubeObject, next: NewObject): KubeObject {
    const stored: KubeObject = {
      ...structuredClone(next),
      metadata: {
        ...structuredClone(next.metadata),
        uid: existing.metadata.uid,
        creationTimestamp: existing.metadata.creationTimestamp,
        resourceVersion: this.revisions.next(),
      },
    };
    this.objects.set(key(stored.metadata.namespace, stored.metadata.name), stored);
    return structuredClone(stored);
  }

  delete(namespace: string | undefined, name: string): KubeObject | undefined {
    const k = key(namespace, name);
    const found = this.objects.get(k);
    if (!found) return undefined;
    this.objects.delete(k);
    this.revisions.next();
    return found;
  }

  clear(): void {
    this.objects.clear();
  }
}

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}
