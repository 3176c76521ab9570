/**
 * CPU time another process of this machine has used, from /proc/<pid>/stat (user + system): what Azurite and the
 * benchmark's helper processes cost per enrolment, beside the service's own (process.cpuUsage). The machine's cores
 * are shared by all of them, so their sum says how full the machine was. Linux only; undefined elsewhere, or once the
 * process has gone. The kernel counts in clock ticks (10 ms at the usual 100 per second): enough over a cell of seconds.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces: state is [0], utime [11], stime [12].
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}
