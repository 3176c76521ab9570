/**
 * How many labels and taints a node may get from its pool and its token together. A node's labels are the pool's
 * merged with the token's (a token's value wins on a shared key) and stored as one JSON string property of the node
 * row (clients/registry/table-rows.ts); its taints are the two lists one after the other, read back under the
 * Taints schema. Each side is held to its own cap, but nothing holds the sum: merged over the caps, every enrolment
 * with that token would fail on the write (Azure refuses a string of over 32,768 UTF-16 units: 400
 * PropertyValueTooLarge) or on reading the row back, answered 5xx forever. So the merge is held to the pool-side caps.
 *
 * Why the pool-side cap is enough for the string limit: a label key is at most 253 + 1 + 63 characters, a value at
 * most 63, both of [A-Za-z0-9._/-] (nothing JSON escapes), so 64 labels serialise to at most
 * 2 + 64 × (317 + 63 + 6) = 24,706 characters, under 32,768 with room to spare. Two full sides (128) would not fit.
 *
 * Used where a merge is decided (token creation, functions/manage-tokens.ts), where it is made (enrolment,
 * use-cases/enrol.ts), and where one side changes under existing tokens (pool update: `tokensOverBudget`).
 */

/** The pool-side caps (model.ts: Labels at most 64, Taints at most 32); the merge is held to them too. */
export const MAX_NODE_LABELS = 64;
export const MAX_NODE_TAINTS = 32;

type Side = { labels: Readonly<Record<string, string>>; taints: readonly unknown[] };

/** A node's labels from its pool's and its token's: the token's value wins on a key both set. */
export function mergeNodeLabels(pool: Readonly<Record<string, string>>, token: Readonly<Record<string, string>>): Record<string, string> {
  return { ...pool, ...token };
}

/** One over-budget field: `labels` or `taints` (the token's field, which is what an admin changes to fix it). */
export interface BudgetIssue {
  field: "labels" | "taints";
  message: string;
}

/** Why the pool's and the token's labels and taints cannot go on one node, if they cannot. */
export function nodeLabelBudgetIssues(pool: Side, token: Side): BudgetIssue[] {
  const issues: BudgetIssue[] = [];
  const labels = Object.keys(mergeNodeLabels(pool.labels, token.labels)).length;
  if (labels > MAX_NODE_LABELS) {
    const poolCount = Object.keys(pool.labels).length;
    issues.push({
      field: "labels",
      message:
        `with the pool's ${poolCount} node labels, a node would carry ${labels} labels; at most ${MAX_NODE_LABELS} fit on a node ` +
        `(the token may add at most ${Math.max(0, MAX_NODE_LABELS - poolCount)} keys the pool does not set)`,
    });
  }
  const taints = pool.taints.length + token.taints.length;
  if (taints > MAX_NODE_TAINTS) {
    issues.push({
      field: "taints",
      message:
        `with the pool's ${pool.taints.length} node taints, a node would carry ${taints} taints; at most ${MAX_NODE_TAINTS} fit on a node ` +
        `(the token may add at most ${Math.max(0, MAX_NODE_TAINTS - pool.taints.length)})`,
    });
  }
  return issues;
}

/**
 * For a pool update: the tokens whose labels or taints, merged with the pool's new ones, go over the budget. Their
 * enrolments would be refused (409) until the pool or the token changes, so an update should refuse or name them.
 */
export function tokensOverBudget<T extends { tokenId: string } & Side>(
  pool: { nodeLabels: Readonly<Record<string, string>>; nodeTaints: readonly unknown[] },
  tokens: readonly T[],
): { token: T; issues: BudgetIssue[] }[] {
  return tokens
    .map((token) => ({ token, issues: nodeLabelBudgetIssues({ labels: pool.nodeLabels, taints: pool.nodeTaints }, token) }))
    .filter((t) => t.issues.length > 0);
}
