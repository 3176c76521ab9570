/** Entry point of the load generator's process (load-generator.ts forks it): runs each batch it is sent. */
import { serveHelper } from "./child-rpc.js";
import { runLoad } from "./http-load.js";
import type { LoadBatch, LoadReply } from "./load-generator.js";

serveHelper<LoadBatch, LoadReply, true>("load-generator-process.ts", true, async (batch) => {
  const before = process.cpuUsage();
  const result = await runLoad(batch.origin, batch.requests, batch.concurrency);
  const cpu = process.cpuUsage(before);
  return { ...result, generatorCpuMs: (cpu.user + cpu.system) / 1000 };
});
