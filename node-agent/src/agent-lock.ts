/**
 * One agent at a time on a machine: `run` (resident, or a drain-mode timer start) and `reset` each hold this lock while
 * they work. Without it a `flexnode-agent reset` beside a running agent undid changes while a step recorded new ones:
 * the manifest each keeps in memory overwrote the other's, losing undo records or bringing undone ones back.
 *
 * The lock is a file in the agent's state directory, created exclusively, naming the holder (pid, what, and the boot
 * it runs in). A file whose holder is gone (its pid no longer runs, or it names an earlier boot, where pids are reused)
 * is stale and taken over, so a killed agent never locks the machine.
 */
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import * as z from "zod";
import { agentFiles } from "./agent-files.js";

export class AgentBusyError extends Error {
  readonly code = "agent_busy";
  /** `holder` undefined: the lock is being taken this instant and cannot be read yet. */
  constructor(
    readonly holder: LockHolder | undefined,
    wanted: string,
  ) {
    super(
      holder
        ? `another flexnode-agent ${holder.what} (pid ${holder.pid}) is running on this machine; ${wanted} waits for it: stop it first (systemctl stop flexnode-agent, and flexnode-agent.timer in drain mode)`
        : `another flexnode-agent is starting on this machine; ${wanted} waits for it: try again in a few seconds`,
    );
    this.name = "AgentBusyError";
  }
}

const LockHolder = z.object({ pid: z.int().min(1), what: z.string(), bootId: z.string(), since: z.string() });
type LockHolder = z.infer<typeof LockHolder>;

const UNREADABLE_GRACE_MS = 5_000;

export interface AgentLock {
  release(): Promise<void>;
}

function currentBootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Lock files this process holds: a holder with this process's pid is alive only if it is one of these. */
const heldHere = new Set<string>();

/** Takes the lock for `what` ("run", "reset"), or throws AgentBusyError naming the live holder. */
export async function acquireAgentLock(root: string, what: string): Promise<AgentLock> {
  const { stateDir } = agentFiles(root);
  const file = `${stateDir}/agent.lock`;
  const me: LockHolder = { pid: process.pid, what, bootId: currentBootId(), since: new Date().toISOString() };
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(file, "wx", 0o600);
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.close();
      heldHere.add(file);
      return {
        release: async () => {
          heldHere.delete(file);
          await unlink(file).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: try again
    const held = LockHolder.safeParse(parseJson(text));
    if (!held.success) {
      // Being written by its holder this instant, or left half-written by a crash (stale once it is a few seconds old).
      const age = Date.now() - ((await stat(file).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age < UNREADABLE_GRACE_MS) throw new AgentBusyError(undefined, what);
    } else if (alive(held.data, me, file)) throw new AgentBusyError(held.data, what);
    await removeIfStill(file, text);
  }
  throw new Error(`could not take ${file}: it keeps changing hands`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Same boot and a running pid; this process's own pid counts only for a lock it holds (a restart may reuse its pid). */
function alive(holder: LockHolder, me: LockHolder, file: string): boolean {
  if (holder.bootId !== me.bootId) return false;
  return holder.pid === me.pid ? heldHere.has(file) : running(holder.pid);
}

/**
 * Removes a stale lock only if it is still the one judged stale: two starts that both found it stale must not have the
 * later one delete the lock the earlier one has just taken. Moved aside first (atomic), then compared; a lock that
 * changed meanwhile is moved back, unless yet another has appeared, which then stands.
 */
async function removeIfStill(file: string, stale: string): Promise<void> {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    await rename(file, aside);
  } catch {
    return; // gone already: the next attempt creates it
  }
  const moved = await readFile(aside, "utf8").catch(() => undefined);
  if (moved !== stale) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}
