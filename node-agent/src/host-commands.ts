/**
 * The host port: the four programs the agent may run. Real: spawned without a shell from fixed system directories
 * (never $PATH, which a config file or environment could point elsewhere), with a C locale so their output parses,
 * a time limit and capped output. Tests and the sandbox: a recorder that answers from a script.
 */
import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import * as path from "node:path";
import type { HostCommandResult, HostCommands, HostProgram } from "./ports.js";

export const HOST_PROGRAMS: readonly HostProgram[] = ["systemctl", "modprobe", "sysctl", "systemd-sysext"];
const SEARCH_DIRS = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

export interface RealHostCommandsOptions {
  /** Default 300 s: `systemctl start` waits for the unit, `systemd-sysext refresh` remounts /usr. */
  timeoutMs?: number;
  /** Bytes kept of each of stdout and stderr; the rest is dropped (default 64 KiB). */
  maxOutputBytes?: number;
}

/** Exit code reported when the program is not installed (as a shell would). */
export const NOT_FOUND_CODE = 127;
/** Exit code reported when the program ran past the time limit and was killed (as timeout(1) would). */
export const TIMED_OUT_CODE = 124;

async function locate(program: HostProgram): Promise<string | undefined> {
  for (const dir of SEARCH_DIRS) {
    const candidate = path.join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

class Capped {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      this.chunks.push(kept);
      this.size += kept.length;
    }
    this.dropped += Math.max(0, chunk.length - Math.max(0, room));
  }

  text(): string {
    const s = Buffer.concat(this.chunks).toString("utf8");
    return this.dropped > 0 ? `${s}\n[${this.dropped} bytes dropped]` : s;
  }
}

export function realHostCommands(options: RealHostCommandsOptions = {}): HostCommands {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const maxOutputBytes = options.maxOutputBytes ?? 64 * 1024;
  const located = new Map<HostProgram, Promise<string | undefined>>();
  return {
    async run(program, args) {
      if (!HOST_PROGRAMS.includes(program)) throw new Error(`not a host program: ${String(program)}`);
      let where = located.get(program);
      if (!where) {
        where = locate(program);
        located.set(program, where);
      }
      const file = await where;
      if (!file) return { code: NOT_FOUND_CODE, stdout: "", stderr: `${program} not found in ${SEARCH_DIRS.join(", ")}` };
      return new Promise<HostCommandResult>((resolve) => {
        const stdout = new Capped(maxOutputBytes);
        const stderr = new Capped(maxOutputBytes);
        const child = spawn(file, [...args], {
          shell: false,
          stdio: ["ignore", "pipe", "pipe"],
          env: { PATH: SEARCH_DIRS.join(":"), LC_ALL: "C", SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0" },
        });
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, timeoutMs);
        child.stdout.on("data", (c: Buffer) => stdout.push(c));
        child.stderr.on("data", (c: Buffer) => stderr.push(c));
        child.on("error", (e) => {
          clearTimeout(timer);
          resolve({ code: NOT_FOUND_CODE, stdout: "", stderr: `${program}: ${e.message}` });
        });
        child.on("close", (code) => {
          clearTimeout(timer);
          if (timedOut) resolve({ code: TIMED_OUT_CODE, stdout: stdout.text(), stderr: `${stderr.text()}\n${program} timed out after ${timeoutMs} ms` });
          else resolve({ code: code ?? 128, stdout: stdout.text(), stderr: stderr.text() });
        });
      });
    },
  };
}

export interface RecordedCall {
  program: HostProgram;
  args: string[];
  result: HostCommandResult;
}

export type HostScript = (program: HostProgram, args: readonly string[]) => HostCommandResult | undefined | Promise<HostCommandResult | undefined>;

export interface RecordingHostCommandsOptions {
  /** Simulated run time of each command, half before its effect and half after (a real systemctl is not instant). */
  latencyMs?: number;
}

/** Records every call; answers from `script`, or with exit code 0 and no output when it has no answer. */
export class RecordingHostCommands implements HostCommands {
  readonly calls: RecordedCall[] = [];

  constructor(
    private readonly script?: HostScript,
    private readonly options: RecordingHostCommandsOptions = {},
  ) {}

  async run(program: HostProgram, args: readonly string[]): Promise<HostCommandResult> {
    const half = (this.options.latencyMs ?? 0) / 2;
    if (half > 0) await new Promise((r) => setTimeout(r, half));
    const result = (await this.script?.(program, args)) ?? { code: 0, stdout: "", stderr: "" };
    this.calls.push({ program, args: [...args], result });
    if (half > 0) await new Promise((r) => setTimeout(r, half));
    return result;
  }

  /** The calls as `program arg…` lines, for assertions. */
  lines(): string[] {
    return this.calls.map((c) => [c.program, ...c.args].join(" "));
  }
}
