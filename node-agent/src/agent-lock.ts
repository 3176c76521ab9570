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
import { mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import * as z from "zod";
import { agentFiles } from "./agent-files.js";

export class AgentBusyError extends Error {
  readonly code = "agent_busy";
  constructor(
    readonly holder: LockHolder,
    wanted: string,
  ) {
    super(
      `another flexnode-agent ${holder.what} (pid ${holder.pid}) is running on this machine; ${wanted} waits for it: stop it first (systemctl stop flexnode-agent flexnode-agent.timer)`,
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

/** Takes the lock for `what` ("run", "reset"), or throws AgentBusyError naming the live holder. */
export async function acquireAgentLock(root: string, what: string): Promise<AgentLock> {
  const { stateDir } = agentFiles(root);
  const file = `${stateDir}/agent.lock`;
  const me: LockHolder = { pid: process.pid, what, bootId: currentBootId(), since: new Date().toISOString() };
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, "wx", 0o600);
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.close();
      return { release: () => unlink(file).catch(() => undefined) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const held = LockHolder.safeParse(await readFile(file, "utf8").then(JSON.parse, () => undefined));
    if (!held.success) {
      // Being written by its holder this instant, or left half-written by a crash (stale once it is a few seconds old).
      const age = Date.now() - ((await stat(file).catch(() => undefined))?.mtimeMs ?? 0);
      if (age < UNREADABLE_GRACE_MS) throw new AgentBusyError({ pid: 0, what: "start", bootId: me.bootId, since: "" }, what);
    } else if (held.data.bootId === me.bootId && running(held.data.pid)) throw new AgentBusyError(held.data, what);
    // From an earlier boot, its process gone, or unreadable for long: stale.
    await unlink(file).catch(() => undefined);
  }
  throw new Error(`could not take ${file}: it keeps reappearing`);
}
