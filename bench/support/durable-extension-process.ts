/** Entry point of the Durable stand-in's process (durable-extension.ts forks it): serves starts, answers counts. */
import * as z from "zod";
import { serveHelper } from "./child-rpc.js";
import { serveDurableExtension } from "./durable-extension.js";

const connectionString = z.string().includes("QueueEndpoint=").includes("TableEndpoint=").parse(process.argv[2], { reportInput: false });
const extension = await serveDurableExtension(connectionString);
serveHelper<"starts", number, { origin: string }>("durable-extension-process.ts", { origin: extension.origin }, async () => extension.starts());
