/**
 * Entry point of the load generator's process (load-generator.ts forks it): runs each batch it is sent and answers
 * its result. Ends when stopped (SIGTERM) or when its parent goes away (the IPC channel closes).
 */
import { runLoad } from "./http-load.js";
import type { LoadBatch, LoadReply } from "./load-generator.js";

if (!process.send) throw new Error("load-generator-process.ts runs as a forked child only");
const reply = (message: LoadReply) => process.send!(message);

process.on("message", (batch: LoadBatch) => {
  const before = process.cpuUsage();
  runLoad(batch.origin, batch.requests, batch.concurrency).then(
    (result) => {
      const cpu = process.cpuUsage(before);
      reply({ id: batch.id, result, generatorCpuMs: (cpu.user + cpu.system) / 1000 });
    },
    (error: unknown) => reply({ id: batch.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on("disconnect", () => process.exit(0));
process.send({ ready: true });
