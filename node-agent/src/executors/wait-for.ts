/**
 * waitFor: a file to appear, a TCP port to accept, or an HTTP(S) URL to answer 2xx — polled with backoff until
 * `timeoutSeconds`. It only reads, so it records nothing. When the file is a kubelet client certificate, the output
 * says which node it names (`kubeletNode`): the Node the kubelet is registering now (see kubelet-certificate.ts).
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { rootCertificates } from "node:tls";
import type { WaitForParams } from "../../../contract/step-params.js";
import { lstatIfExists } from "../fs-atomic.js";
import { resolveHostPath } from "../paths.js";
import { WaitTimeoutError } from "../step-errors.js";
import type { Executor } from "./context.js";
import { kubeletNodeOf } from "./kubelet-certificate.js";

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5_000;

function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: host.replace(/^\[|\]$/g, ""), port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function urlAnswers(url: string, ca: string | undefined, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const https = url.startsWith("https:");
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method: "GET", timeout: timeoutMs, ...(https && ca ? { ca: [...rootCertificates, ca] } : {}) },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 300);
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

export const waitFor: Executor<WaitForParams> = async (params, ctx) => {
  const { root, ca } = ctx.deps;
  const deadline = Date.now() + params.timeoutSeconds * 1000;
  const probe = async (): Promise<boolean> => {
    const remaining = Math.max(1, deadline - Date.now());
    if (params.file !== undefined) {
      const target = await resolveHostPath(root, params.file, { write: false });
      return (await lstatIfExists(target.fsPath)) !== undefined;
    }
    if (params.tcp) return tcpOpen(params.tcp.host, params.tcp.port, Math.min(remaining, 5_000));
    return urlAnswers(params.url!, ca, Math.min(remaining, 10_000));
  };
  const what = params.file ?? (params.tcp ? `${params.tcp.host}:${params.tcp.port}` : params.url!);
  let delay = FIRST_DELAY_MS;
  let polls = 0;
  for (;;) {
    polls += 1;
    if (await probe()) {
      const kubeletNode = params.file === undefined ? undefined : await kubeletNodeOf(root, params.file);
      return { ready: what, polls, ...(kubeletNode === undefined ? {} : { kubeletNode }) };
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new WaitTimeoutError(`${what} not ready after ${params.timeoutSeconds} s (${polls} polls)`);
    await new Promise((r) => setTimeout(r, Math.min(delay, remaining)));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
};
