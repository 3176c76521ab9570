/**
 * A closed-loop HTTP load generator: `concurrency` workers, each sending its next request as soon as the previous one
 * answered, over keep-alive connections (one per worker), until every prepared request has been sent once.
 */
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

export interface LoadRequest {
  method: string;
  path: string;
  body: string;
  /** Extra headers (a signed enrolment's signature headers). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  latenciesMs: number[];
  statuses: Record<string, number>;
  elapsedMs: number;
  /** Bodies of non-2xx answers, first few, for diagnosis. */
  failures: string[];
}

export async function runLoad(origin: string, requests: readonly LoadRequest[], concurrency: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latenciesMs: number[] = [];
  const statuses: Record<string, number> = {};
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const r = requests[next++]!;
      const started = performance.now();
      const { status, body } = await send(agent, origin, r);
      latenciesMs.push(performance.now() - started);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if ((status < 200 || status >= 300) && failures.length < 5) failures.push(`${status} ${body.slice(0, 300)}`);
    }
  };
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  } finally {
    agent.destroy();
  }
  return { latenciesMs, statuses, elapsedMs: performance.now() - started, failures };
}

function send(agent: Agent, origin: string, r: LoadRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(r.path, origin),
      { method: r.method, agent, headers: { "content-type": "application/json", ...r.headers, "content-length": Buffer.byteLength(r.body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}
