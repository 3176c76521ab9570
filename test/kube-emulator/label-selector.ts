/**
 * Label selectors as list calls take them (`?labelSelector=`): equality (`k=v`, `k==v`, `k!=v`), set-based
 * (`k in (a,b)`, `k notin (a)`) and existence (`k`, `!k`), comma-separated and ANDed. A syntax error is a 400, as on
 * the API server.
 */
import { labelKeyProblem, labelValueProblem } from "./validation.js";
import { statusErrors } from "./status.js";

type Requirement = { key: string; op: "in" | "notin"; values: string[] } | { key: string; op: "exists" | "!exists" };

export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  const requirements = splitTopLevel(text ?? "").map(parseRequirement);
  return (labels) => requirements.every((r) => matches(r, labels ?? {}));
}

function matches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.op) {
    case "exists":
      return has;
    case "!exists":
      return !has;
    case "in":
      return has && r.values.includes(labels[r.key]!);
    case "notin":
      return !has || !r.values.includes(labels[r.key]!);
  }
}

/** Commas inside `( … )` belong to a value set, not between requirements. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth += 1;
    if (ch === ")") depth -= 1;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p, i, all) => p !== "" || all.length > 1 || i > 0);
}

function parseRequirement(text: string): Requirement {
  if (text === "") throw invalid(text, "empty requirement");
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(text);
  if (set) {
    const values = set[3]!.split(",").map((v) => v.trim());
    return { key: checkKey(set[1]!), op: set[2] as "in" | "notin", values: values.map(checkValue) };
  }
  const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(text);
  if (equality) {
    const key = checkKey(equality[1]!);
    const value = checkValue(equality[3]!);
    return { key, op: equality[2] === "!=" ? "notin" : "in", values: [value] };
  }
  const existence = /^(!?)\s*([^=!\s(),]+)$/.exec(text);
  if (existence) return { key: checkKey(existence[2]!), op: existence[1] === "!" ? "!exists" : "exists" };
  throw invalid(text, "expected key, !key, key=value, key!=value, key in (…) or key notin (…)");
}

function checkKey(key: string): string {
  const problem = labelKeyProblem(key);
  if (problem) throw invalid(key, `key: ${problem}`);
  return key;
}

function checkValue(value: string): string {
  const problem = labelValueProblem(value);
  if (problem) throw invalid(value, `value: ${problem}`);
  return value;
}

function invalid(text: string, why: string) {
  return statusErrors.badRequest(`unable to parse requirement: ${JSON.stringify(text)}: ${why}`);
}
