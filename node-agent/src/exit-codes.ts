/** `flexnode-agent` exit codes (documented in node-agent/README.md); scripts and systemd units rely on them. */
export const EXIT = {
  ok: 0,
  /** Something failed at run time: service unreachable after retries, an unexpected answer, a reset that left changes. */
  failed: 1,
  /** Unknown command or flag, a malformed --url or --token. */
  usage: 2,
  /** `run` or `status`-dependent work before `enrol`. */
  notEnrolled: 3,
  /** `preflight` found a failing check. */
  preflightFailed: 4,
  /** The service refused enrolment (token unknown, expired, revoked, used up; clone refused). */
  refused: 5,
  /** The node has no mailbox (failed or offboarded): `run` has nothing to do until the node enrols again. */
  noMailbox: 6,
  /** Another agent (`run`, `reset`) is working on this machine; try again once it stopped (sysexits EX_TEMPFAIL). */
  busy: 75,
  /** The identity key or state file has unsafe permissions or cannot be used (sysexits EX_NOPERM). */
  insecure: 77,
  /** agent.json or a FLEXNODE_* variable is invalid (sysexits EX_CONFIG). */
  config: 78,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
