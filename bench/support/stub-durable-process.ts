/** Entry point of the Durable stand-in's process (stub-durable-endpoint.ts forks it): serves starts, answers counts. */
import { serveHelper } from "./child-rpc.js";
import { serveStubDurable } from "./stub-durable-endpoint.js";

const stub = await serveStubDurable();
serveHelper<"starts", number, { origin: string }>("stub-durable-process.ts", { origin: stub.origin }, async () => stub.starts());
