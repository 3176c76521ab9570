/**
 * The sandbox's front door over real HTTP hands the function a request body the way the Functions host does: only
 * when Content-Length > 0 (a chunked request arrives with none, azure-functions-host#4926), and answers 413 past the
 * host's body limit.
 */
import { request } from "node:http";
import { app } from "@azure/functions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEPLOYED_REQUEST_BODY_SIZE_LIMIT, FunctionsHost } from "../functions-host/index.js";
import { startFrontDoor, type FrontDoor } from "./front-door.js";

app.http("frontDoorTest_echo", {
  route: "fd-echo",
  methods: ["POST"],
  authLevel: "anonymous",
  handler: async (req) => ({ jsonBody: { length: (await req.arrayBuffer()).byteLength } }),
});

let door: FrontDoor;
beforeAll(async () => {
  const host = new FunctionsHost();
  door = await startFrontDoor({ host: () => host });
});
afterAll(async () => {
  await door?.close();
});

/** Posts `chunks`; with `length` the request declares it, without it node frames the body chunked. */
function post(chunks: Buffer[], length?: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (length !== undefined) headers["content-length"] = String(length);
    const req = request(`${door.url}/api/fd-echo`, { method: "POST", headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8") }));
    });
    req.on("error", reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe("sandbox front door: request bodies", () => {
  it("drops a chunked request's body, as the host does; passes a body with its Content-Length", async () => {
    const chunked = await post([Buffer.from('{"a":'), Buffer.from("1}")]);
    expect(chunked).toEqual({ status: 200, body: JSON.stringify({ length: 0 }) });
    const sized = await post([Buffer.from('{"a":1}')], 7);
    expect(sized).toEqual({ status: 200, body: JSON.stringify({ length: 7 }) });
  });

  it("answers 413 past the host's body limit", async () => {
    const big = Buffer.alloc(DEPLOYED_REQUEST_BODY_SIZE_LIMIT + 1, 0x20);
    expect((await post([big], big.length)).status).toBe(413);
  });
});
