/**
 * The `$filter` forms the role-assignment list API accepts: `atScope()`, `assignedTo('{oid}')`,
 * `principalId eq '{oid}'`, joined with `and`. The SDK sends spaces as %20 and callers following the docs send `+`;
 * both arrive here as spaces after query decoding.
 */
import { ArmError } from "./arm-error.js";

export interface RoleAssignmentFilter {
  /** Only assignments at the scope or inherited from above it, none from below. */
  atScope: boolean;
  /** Every listed principal must match (several terms with different ids match nothing). */
  principalIds: string[];
}

export function parseRoleAssignmentFilter(raw: string | null): RoleAssignmentFilter {
  const filter: RoleAssignmentFilter = { atScope: false, principalIds: [] };
  if (raw === null || raw.trim() === "") return filter;
  for (const term of raw.trim().split(/\s+and\s+/i)) {
    const t = term.trim();
    if (/^atScope\(\s*\)$/i.test(t)) {
      filter.atScope = true;
      continue;
    }
    const principal = /^assignedTo\(\s*'([^']*)'\s*\)$/i.exec(t) ?? /^principalId\s+eq\s+'([^']*)'$/i.exec(t);
    if (principal) {
      filter.principalIds.push(principal[1]!.toLowerCase());
      continue;
    }
    throw new ArmError(
      400,
      "UnsupportedQuery",
      `The filter '${raw}' is not supported. Supported filters are either 'atScope()' or 'principalId eq '{value}'' or 'assignedTo('{value}')'.`,
    );
  }
  return filter;
}
