/**
 * Where the service side of the agent keeps its own files, under `--root` ("/" on a real node). The host paths come
 * from AGENT_PATHS (contract/step-params.ts), which is also what keeps every step from writing them.
 */
import { join, resolve } from "node:path";
import { AGENT_PATHS } from "../../contract/step-params.js";

/** Host paths of the agent's state: all in AGENT_PATHS.stateDir, which is 0700. */
export const STATE_DIR = AGENT_PATHS.stateDir;
export const IDENTITY_DIR = `${STATE_DIR}/identity`;

export interface AgentFiles {
  root: string;
  /** Operator-written settings (never written by the agent). */
  configFile: string;
  /** Everything the agent keeps: state, identity, manifest, prior blobs, downloads (0700). */
  stateDir: string;
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
    configFile: underRoot(root, AGENT_PATHS.configFile),
    stateDir: underRoot(root, STATE_DIR),
    identityDir: underRoot(root, IDENTITY_DIR),
    identityKey: underRoot(root, `${IDENTITY_DIR}/node-key.pem`),
    stateFile: underRoot(root, `${STATE_DIR}/state.json`),
  };
}
