/** Where the service side of the agent keeps its own files, under `--root` ("/" on a real node). */
import { join, resolve } from "node:path";

export interface AgentFiles {
  root: string;
  /** Operator-written settings (never written by the agent). */
  configFile: string;
  identityDir: string;
  /** The node's Ed25519 private key, PKCS#8 PEM. */
  identityKey: string;
  /** What enrolment returned and what the mailbox loop must remember (results already sent). */
  stateFile: string;
}

/** `path` is absolute on the host; the result is the same path under `root`. */
export function underRoot(root: string, path: string): string {
  return join(resolve(root), path);
}

export function agentFiles(root: string): AgentFiles {
  return {
    root: resolve(root),
    configFile: underRoot(root, "/etc/flexnode/agent.json"),
    identityDir: underRoot(root, "/var/lib/flexnode/identity"),
    identityKey: underRoot(root, "/var/lib/flexnode/identity/node-key.pem"),
    stateFile: underRoot(root, "/var/lib/flexnode/state.json"),
  };
}
