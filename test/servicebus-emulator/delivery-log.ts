/**
 * Everything the broker did with messages and credentials, in order, for assertions such as "node-7's message was
 * delivered once, on a link authorized by a Listen token scoped to node-7, and completed".
 */

/** Which credential a link was opened with. */
export interface AuthorizedBy {
  ruleName: string;
  /** The token's resource scope (`sr`, decoded). */
  scopeUri: string;
  /** Token expiry, ms since the epoch. */
  tokenExpiresAt: number;
}

export interface LinkRef {
  connectionId: string;
  linkName: string;
  authorizedBy: AuthorizedBy;
}

interface MessageRef {
  /** Queue name as created. */
  queue: string;
  /** The entity the event happened on: the queue or `<queue>/$DeadLetterQueue`. */
  entityPath: string;
  messageId: string;
  sequenceNumber: number;
}

export type Outcome = "completed" | "abandoned" | "deferred" | "deadLettered";

export type LogEvent =
  /** `body` is the decoded body as it arrived, so tests can audit everything that ever reached a queue. */
  | ({
      kind: "enqueued";
      state: "active" | "scheduled";
      enqueuedAt: number;
      via: "link" | "management";
      link: LinkRef;
      body: unknown;
      applicationProperties: Record<string, unknown>;
    } & MessageRef)
  | ({ kind: "delivered"; deliveryCount: number; lockToken: string | undefined; receiveMode: "peekLock" | "receiveAndDelete"; link: LinkRef } & MessageRef)
  | ({ kind: "settled"; outcome: Outcome; lockToken: string; via: "link" | "management"; result: "ok" | "lockLost"; link: LinkRef | undefined } & MessageRef)
  | ({ kind: "deadLettered"; reason: string | undefined; description: string | undefined } & MessageRef)
  | ({ kind: "lockExpired"; lockToken: string; deliveryCount: number } & MessageRef)
  | ({ kind: "lockRenewed"; lockToken: string; lockedUntil: number } & MessageRef)
  | ({ kind: "expired"; deadLettered: boolean } & MessageRef)
  | {
      kind: "putToken";
      connectionId: string;
      audience: string;
      status: number;
      description: string;
      ruleName: string | undefined;
      scopeUri: string | undefined;
    }
  /** A client receiver (`receive`) or sender (`send`) attached to an entity. */
  | { kind: "linkAttached"; role: "receive" | "send"; entityPath: string; link: LinkRef }
  | { kind: "linkRefused"; connectionId: string; linkName: string; address: string; condition: string; description: string }
  /** The emulator detached a link (token expired) and the client has acknowledged it. */
  | { kind: "linkDetached"; connectionId: string; linkName: string; address: string; condition: string; description: string }
  /** `emulator`: an exception in the emulator (a bug); `peer`: a link error no handler took. */
  | { kind: "error"; source: "emulator" | "peer"; message: string };

export type LogEntry = LogEvent & {
  /** Position in the log, from 1. */
  seq: number;
  /** Emulator clock time, ms since the epoch. */
  at: number;
};

export type EntryOf<K extends LogEntry["kind"]> = Extract<LogEntry, { kind: K }>;

type Waiter = (entry: LogEntry) => void;

export class DeliveryLog {
  private readonly list: LogEntry[] = [];
  private readonly waiters = new Set<Waiter>();
  private nextSeq = 1;

  constructor(
    private readonly now: () => number,
    /** Oldest entries are dropped beyond this, so a long-running dev emulator does not grow without bound. */
    private readonly maxEntries = 100_000,
  ) {}

  get entries(): readonly LogEntry[] {
    return this.list;
  }

  append(event: LogEvent): void {
    const entry = { ...event, seq: this.nextSeq++, at: this.now() } as LogEntry;
    this.list.push(entry);
    if (this.list.length > this.maxEntries * 1.1) this.list.splice(0, this.list.length - this.maxEntries);
    for (const waiter of [...this.waiters]) waiter(entry);
  }

  of<K extends LogEntry["kind"]>(kind: K, match: (entry: EntryOf<K>) => boolean = () => true): EntryOf<K>[] {
    return this.list.filter((e): e is EntryOf<K> => e.kind === kind && match(e as EntryOf<K>));
  }

  deliveries(queue?: string): EntryOf<"delivered">[] {
    return this.of("delivered", (e) => queue === undefined || sameName(e.queue, queue));
  }

  enqueued(queue?: string): EntryOf<"enqueued">[] {
    return this.of("enqueued", (e) => queue === undefined || sameName(e.queue, queue));
  }

  settlements(queue?: string): EntryOf<"settled">[] {
    return this.of("settled", (e) => queue === undefined || sameName(e.queue, queue));
  }

  deadLetters(queue?: string): EntryOf<"deadLettered">[] {
    return this.of("deadLettered", (e) => queue === undefined || sameName(e.queue, queue));
  }

  /** Resolves with the first entry (already logged or arriving within `timeoutMs`) of `kind` that matches. */
  waitFor<K extends LogEntry["kind"]>(kind: K, match: (entry: EntryOf<K>) => boolean = () => true, timeoutMs = 5000): Promise<EntryOf<K>> {
    const existing = this.of(kind, match)[0];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = (entry) => {
        if (entry.kind === kind && match(entry as EntryOf<K>)) {
          done();
          resolve(entry as EntryOf<K>);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no '${kind}' log entry matched within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  clear(): void {
    this.list.length = 0;
  }
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
