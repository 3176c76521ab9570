/**
 * The Functions host's timer extension, for the sandbox: each registered `timerTrigger` function runs on its NCRONTAB
 * schedule (six fields: second minute hour day month day-of-week, in UTC here) with the payload the host sends.
 * Supports `*`, `*\/n`, numbers, ranges and lists — what the app's schedules use.
 */
import type { FunctionsHost } from "../functions-host/index.js";

export interface RunningTimers {
  invocations: { functionName: string; at: number; error?: string }[];
  close(): void;
}

const RANGES: [number, number][] = [
  [0, 59],
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 6],
];

export function parseNcrontab(expression: string): ((d: Date) => boolean) | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6) return undefined;
  const sets: Set<number>[] = [];
  for (const [i, field] of fields.entries()) {
    const [lo, hi] = RANGES[i]!;
    const set = new Set<number>();
    for (const part of field.split(",")) {
      const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
      if (!m) return undefined;
      const from = m[1] === "*" ? lo : Number(m[2]);
      const to = m[1] === "*" ? hi : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? hi : from;
      const step = m[4] !== undefined ? Number(m[4]) : 1;
      if (from < lo || to > hi || step < 1) return undefined;
      for (let v = from; v <= to; v += step) set.add(v);
    }
    sets.push(set);
  }
  return (d) =>
    sets[0]!.has(d.getUTCSeconds()) &&
    sets[1]!.has(d.getUTCMinutes()) &&
    sets[2]!.has(d.getUTCHours()) &&
    sets[3]!.has(d.getUTCDate()) &&
    sets[4]!.has(d.getUTCMonth() + 1) &&
    sets[5]!.has(d.getUTCDay());
}

/** The next whole second after `from` the schedule matches (searched up to a year ahead). */
export function nextOccurrence(matches: (d: Date) => boolean, from: number): number | undefined {
  const start = Math.floor(from / 1000) * 1000 + 1000;
  for (let t = start, n = 0; n < 366 * 24 * 3600; t += 1000, n++) if (matches(new Date(t))) return t;
  return undefined;
}

export function startTimerTriggers(host: FunctionsHost, options: { log?: (line: string) => void } = {}): RunningTimers {
  const invocations: RunningTimers["invocations"] = [];
  const handles = new Set<NodeJS.Timeout>();
  let closed = false;
  for (const fn of host.registry.byTriggerType("timerTrigger")) {
    const name = fn.metadata.name;
    const matches = parseNcrontab(String(fn.trigger.schedule));
    if (!matches) {
      options.log?.(`timer ${name}: schedule '${String(fn.trigger.schedule)}' is not supported by the sandbox; not run`);
      continue;
    }
    let last = Date.now();
    const arm = () => {
      if (closed) return;
      const next = nextOccurrence(matches, Date.now());
      if (next === undefined) return;
      // setTimeout holds at most ~24.8 days; re-arm until the occurrence is reached.
      const handle = setTimeout(
        () => {
          handles.delete(handle);
          if (Date.now() < next - 5) return arm();
          const payload = {
            schedule: { adjustForDST: true },
            scheduleStatus: {
              last: new Date(last).toISOString(),
              next: new Date(nextOccurrence(matches, next) ?? next).toISOString(),
              lastUpdated: new Date().toISOString(),
            },
            isPastDue: false,
          };
          last = next;
          host.invoke(name, { json: JSON.stringify(payload) }).then(
            () => invocations.push({ functionName: name, at: next }),
            (error: unknown) => {
              const message = error instanceof Error ? error.message : String(error);
              invocations.push({ functionName: name, at: next, error: message });
              options.log?.(`timer ${name}: ${message}`);
            },
          );
          arm();
        },
        Math.min(next - Date.now(), 2_147_483_647),
      );
      handles.add(handle);
    };
    arm();
  }
  return {
    invocations,
    close: () => {
      closed = true;
      for (const h of handles) clearTimeout(h);
      handles.clear();
    },
  };
}
