/** Entry point of the Durable stand-in's process (durable-extension.ts forks it with its store: `memory` or a storage connection string): serves starts, answers counts. */
import * as z from "zod";
import { serveHelper } from "./child-rpc.js";
import { serveDurableExtension } from "./durable-extension.js";

const store = z
  .union([
    z.literal("memory").transform(() => ({ memory: true as const })),
    z
      .string()
      .includes("QueueEndpoint=")
      .includes("TableEndpoint=")
      .transform((c) => ({ storageConnectionString: c })),
  ])
  .parse(process.argv[2], { reportInput: false });
const extension = await serveDurableExtension(store);
serveHelper<"starts", number, { origin: string }>("durable-extension-process.ts", { origin: extension.origin }, async () => extension.starts());
