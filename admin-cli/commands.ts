/**
 * The CLI's commands: a name people type, the operation it calls, and which path parameter (if any) is its positional
 * argument. Everything else — method, path, query flags, body fields — is read from the OpenAPI document
 * (operations.ts); `commands.test.ts` checks that every admin operation has exactly one command here.
 */
export interface CommandSpec {
  /** Words typed, e.g. ["nodes", "get"]. */
  words: string[];
  operationId: string;
  /** The path or body parameter given as the positional argument (e.g. nodeId). */
  positional?: string;
  /** How a person sees the answer (`--output json` always prints the answer as received). */
  view: "nodes" | "node" | "pools" | "pool" | "tokens" | "token" | "fleet" | "operation" | "accepted" | "none" | "join-config";
}

export const COMMANDS: CommandSpec[] = [
  { words: ["pools", "list"], operationId: "managePoolList", view: "pools" },
  { words: ["pools", "get"], operationId: "managePoolGet", positional: "pool", view: "pool" },
  { words: ["pools", "create"], operationId: "managePoolCreate", positional: "name", view: "pool" },
  { words: ["pools", "update"], operationId: "managePoolUpdate", positional: "pool", view: "pool" },
  { words: ["pools", "delete"], operationId: "managePoolDelete", positional: "pool", view: "none" },
  { words: ["tokens", "list"], operationId: "manageTokenList", view: "tokens" },
  { words: ["tokens", "get"], operationId: "manageTokenGet", positional: "tokenId", view: "token" },
  { words: ["tokens", "create"], operationId: "manageTokenCreate", positional: "pool", view: "token" },
  { words: ["tokens", "revoke"], operationId: "manageTokenRevoke", positional: "tokenId", view: "token" },
  { words: ["tokens", "delete"], operationId: "manageTokenDelete", positional: "tokenId", view: "none" },
  { words: ["nodes", "list"], operationId: "manageNodeList", view: "nodes" },
  { words: ["nodes", "get"], operationId: "manageNodeGet", positional: "nodeId", view: "node" },
  { words: ["approve"], operationId: "manageNodeApprove", positional: "nodeId", view: "node" },
  { words: ["reject"], operationId: "manageNodeReject", positional: "nodeId", view: "node" },
  { words: ["retry"], operationId: "manageNodeRetry", positional: "nodeId", view: "accepted" },
  { words: ["cancel"], operationId: "manageNodeCancel", positional: "nodeId", view: "accepted" },
  { words: ["decommission"], operationId: "manageNodeDecommission", positional: "nodeId", view: "accepted" },
  { words: ["rekey"], operationId: "manageNodeRekey", positional: "nodeId", view: "node" },
  { words: ["join-config"], operationId: "managePoolJoinConfig", view: "join-config" },
  { words: ["fleet"], operationId: "manageFleet", view: "fleet" },
  { words: ["operations", "get"], operationId: "manageOperationGet", positional: "operationId", view: "operation" },
];

/** The command `argv` starts with (the longest match), and the words it used. */
export function findCommand(argv: string[]): CommandSpec | undefined {
  return [...COMMANDS].sort((a, b) => b.words.length - a.words.length).find((c) => c.words.every((w, i) => argv[i] === w));
}
