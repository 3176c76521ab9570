/**
 * xs:duration as the administration API writes durations (`PT1M`, `P14D`, `PT0.5S`), and .NET's TimeSpan.MaxValue,
 * which the service reports for "never" (default message TTL, auto-delete on idle).
 */
export const TIMESPAN_MAX = "P10675199DT2H48M5.4775807S";
/** TimeSpan.MaxValue in whole milliseconds; anything at or above it means "never". */
export const NEVER_MS = 922_337_203_685_477;

const PATTERN = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function parseIsoDuration(text: string): number | undefined {
  const match = PATTERN.exec(text.trim());
  if (!match || text.trim() === "P" || text.trim().endsWith("T")) return undefined;
  const [, days, hours, minutes, seconds] = match;
  const ms = Number(days ?? 0) * 86_400_000 + Number(hours ?? 0) * 3_600_000 + Number(minutes ?? 0) * 60_000 + Number(seconds ?? 0) * 1000;
  return Math.min(Math.round(ms), NEVER_MS);
}

export function formatIsoDuration(ms: number): string {
  if (ms >= NEVER_MS) return TIMESPAN_MAX;
  let rest = Math.max(0, Math.round(ms));
  const days = Math.floor(rest / 86_400_000);
  rest -= days * 86_400_000;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = rest / 1000;
  let time = "";
  if (hours > 0) time += `${hours}H`;
  if (minutes > 0) time += `${minutes}M`;
  if (seconds > 0) time += `${seconds}S`;
  if (days === 0 && time === "") return "PT0S";
  return `P${days > 0 ? `${days}D` : ""}${time === "" ? "" : `T${time}`}`;
}
