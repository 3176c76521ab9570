/**
 * A benchmark's helper process and the calls this process makes to it. What a benchmark moves out of the service's
 * process (the load generator, the Durable extension's stand-in) is work that in production runs elsewhere, and its
 * CPU must not count as the service's. Both sides here: `forkHelper` in the benchmark, `serveHelper` in the child.
 *
 * The child says it is ready once (its first message, which may carry what the parent needs, such as a port), then
 * answers each call with the call's id. It ends when stopped (SIGTERM) or when its parent goes away.
 */
import { fork, type ChildProcess } from "node:child_process";
import { stopChild } from "../../test/support/child-process.js";

export interface Helper<Call, Reply, Ready> {
  /** What the child said when it was ready. */
  ready: Ready;
  pid: number;
  call(message: Call): Promise<Reply>;
  close(): Promise<void>;
}

type Answer<Reply> = { id: number; reply: Reply } | { id: number; error: string };

/** A forked child that has said it is ready: what it said, and how to stop it. */
export interface ReadyChild<Ready> {
  child: ChildProcess;
  ready: Ready;
  close(): Promise<void>;
}

/** Forks `entry` and waits for its first message, `{ ready }`; the child is killed if this process exits first. */
export async function forkChild<Ready>(entry: string, name: string, args: readonly string[] = []): Promise<ReadyChild<Ready>> {
  // Inherits this process's execArgv: under tsx those load TypeScript; the worker's V8 flags come along, harmlessly.
  const child = fork(entry, [...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once("message", (message) => resolve((message as { ready: Ready }).ready));
    child.once("exit", (code) => reject(new Error(`${name} exited before it was ready (code ${code})`)));
  });
  return {
    child,
    ready,
    close: () => {
      process.off("exit", reap);
      return stopChild(child);
    },
  };
}

export async function forkHelper<Call, Reply, Ready>(entry: string, name: string, args: readonly string[] = []): Promise<Helper<Call, Reply, Ready>> {
  const { child, ready, close } = await forkChild<Ready>(entry, name, args);
  let next = 0;
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  child.on("message", (answer: Answer<Reply>) => {
    const waiter = pending.get(answer.id);
    if (!waiter) return;
    pending.delete(answer.id);
    if ("error" in answer) waiter.reject(new Error(`${name}: ${answer.error}`));
    else waiter.resolve(answer.reply);
  });
  const failAll = (error: Error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  child.on("exit", (code, signal) => failAll(new Error(`${name} exited (code ${code}, signal ${signal})`)));
  // A send to a child that has gone emits "error" on it; unhandled, that would end this process without its figures.
  child.on("error", (error) => failAll(error));
  return {
    ready,
    pid: child.pid!,
    call: (message) =>
      new Promise((resolve, reject) => {
        const id = ++next;
        pending.set(id, { resolve, reject });
        child.send({ id, message });
      }),
    close,
  };
}

/** The child's side: answers each call with `handle`'s result, after saying `ready`. */
export function serveHelper<Call, Reply, Ready>(entry: string, ready: Ready, handle: (message: Call) => Promise<Reply>): void {
  if (!process.send) throw new Error(`${entry} runs as a forked child only`);
  const answer = (message: Answer<Reply>) => process.send!(message);
  process.on("message", ({ id, message }: { id: number; message: Call }) => {
    handle(message).then(
      (reply) => answer({ id, reply }),
      (error: unknown) => answer({ id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ ready });
}
