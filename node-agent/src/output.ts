/**
 * What the CLI prints. Human mode: progress lines as things happen, then a short summary. `--output json`: one JSON
 * document per command on stdout (for `run`, one JSON line per event), errors included, so scripts never parse prose.
 * Nothing printed ever carries the enrolment token, a SAS token or a secret: the objects handed here do not hold them.
 */
import type { AgentEvent } from "./agent-events.js";

export type OutputMode = "human" | "json";

export interface Output {
  mode: OutputMode;
  /** A progress line (human mode only). */
  progress(line: string): void;
  /** The command's result: `human` renders it for people, json mode prints `{ ok: true, ...value }`. */
  result(value: Record<string, unknown>, human: () => string[]): void;
  event(event: AgentEvent, at: Date): void;
  error(error: { code: string; message: string; [extra: string]: unknown }): void;
}

export function createOutput(mode: OutputMode, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Output {
  const line = (stream: NodeJS.WritableStream, text: string) => stream.write(`${text}\n`);
  return {
    mode,
    progress: (text) => {
      if (mode === "human") line(stdout, `· ${text}`);
    },
    result: (value, human) => {
      if (mode === "json") line(stdout, JSON.stringify({ ok: true, ...value }));
      else for (const l of human()) line(stdout, l);
    },
    event: (event, at) => {
      if (mode === "json") line(stdout, JSON.stringify({ at: at.toISOString(), ...event }));
      else {
        const text = describeEvent(event);
        if (text !== undefined) line(event.type === "error" ? stderr : stdout, `${at.toISOString()} ${text}`);
      }
    },
    error: (error) => {
      if (mode === "json") line(stdout, JSON.stringify({ ok: false, error }));
      else line(stderr, `error: ${error.message}`);
    },
  };
}

export function describeEvent(e: AgentEvent): string | undefined {
  switch (e.type) {
    case "waiting-for-approval":
      return `waiting for an administrator to approve this node (status ${e.status}); checking again in ${e.nextCheckInSeconds} s`;
    case "mailbox-connected":
      return `listening on mailbox ${e.queue} (tokens valid until ${e.credentialsExpireAt})`;
    case "credentials-refreshed":
      return `mailbox tokens refreshed (valid until ${e.expiresAt})`;
    case "facts-reported":
      return `reported this machine's changed facts (${e.hostname}, ${e.os}, kernel ${e.kernel})`;
    case "step-started":
      return `▶ ${e.stepId} (${e.kind}, attempt ${e.attempt})`;
    case "step-log":
      return `  ${e.stepId}: ${e.line}`;
    case "step-finished":
      return e.outcome === "succeeded" ? `✓ ${e.stepId} succeeded` : `✗ ${e.stepId} failed (${e.errorCode ?? "error"})`;
    case "result-resent":
      return `↺ ${e.stepId} (attempt ${e.attempt}) was delivered again; sent the same result (${e.outcome})`;
    case "envelope-refused":
      return `refused ${e.step ? `step ${e.step.stepId} (attempt ${e.step.attempt})` : "a message"}: ${e.code}: ${e.message} (${e.disposition === "failed-result" ? "reported as failed" : "dead-lettered"})`;
    case "error":
      return `warning (${e.where}): ${e.message}`;
    case "drained":
      return `queue drained and node ${e.status}: exiting; ${e.timer} starts the agent again`;
    case "stopped":
      return "stopped";
  }
}
