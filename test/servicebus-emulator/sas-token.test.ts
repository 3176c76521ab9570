import { AzureNamedKeyCredential } from "@azure/core-auth";
import { createSasTokenProvider } from "@azure/core-amqp";
import { describe, expect, it } from "vitest";
import { AccessRules, grants } from "./access-rules.js";
import { covers, parseResourceUri } from "./resource-uri.js";
import { hasValidSignature, parseSasToken, signSasToken } from "./sas-token.js";
import { checkSasToken } from "./token-check.js";

const NOW = Date.UTC(2030, 0, 1);
const rules = new AccessRules([
  { name: "root", key: "root-key", rights: ["Manage"] },
  { name: "listen", key: "listen-key", rights: ["Listen"] },
]);
const context = { rules, nowMs: NOW, hosts: new Set(["127.0.0.1", "localhost"]) };

function token(resource: string, options: { rule?: string; key?: string; lifetime?: number } = {}): string {
  return signSasToken({
    resourceUri: `sb://127.0.0.1:5672/${resource}`,
    keyName: options.rule ?? "listen",
    key: options.key ?? "listen-key",
    expiresAtSeconds: NOW / 1000 + (options.lifetime ?? 3600),
  });
}

describe("SAS tokens", () => {
  it("round-trip through the service's token format", () => {
    const text = token("node-1");
    expect(text).toMatch(/^SharedAccessSignature sr=sb%3A%2F%2F127\.0\.0\.1%3A5672%2Fnode-1&sig=[^&]+&se=\d+&skn=listen$/);
    const parsed = parseSasToken(text)!;
    expect(parsed).toMatchObject({ resourceUri: "sb://127.0.0.1:5672/node-1", keyName: "listen", expiresAtSeconds: NOW / 1000 + 3600 });
    expect(hasValidSignature(parsed, "listen-key")).toBe(true);
    expect(hasValidSignature(parsed, "other-key")).toBe(false);
    expect(hasValidSignature({ ...parsed, expiresAtSeconds: parsed.expiresAtSeconds + 1 }, "listen-key")).toBe(false);
    expect(parseSasToken("Bearer abc")).toBeUndefined();
    expect(parseSasToken("SharedAccessSignature sr=x&sig=y&skn=z")).toBeUndefined();
  });

  it("verify tokens the SDK itself signs, whatever their field order", async () => {
    const provider = createSasTokenProvider(new AzureNamedKeyCredential("listen", "listen-key"));
    const sdkToken = await provider.getToken("sb://127.0.0.1:5672/node-1/$management");
    const parsed = parseSasToken(sdkToken.token)!;
    expect(hasValidSignature(parsed, "listen-key")).toBe(true);
    const reordered = `SharedAccessSignature ${sdkToken.token.slice("SharedAccessSignature ".length).split("&").reverse().join("&")}`;
    expect(hasValidSignature(parseSasToken(reordered)!, "listen-key")).toBe(true);
  });
});

describe("resource scope", () => {
  const scope = parseResourceUri("sb://127.0.0.1:5672/queue-a")!;
  it.each([
    ["queue-a", true],
    ["QUEUE-A", true],
    ["queue-a/$management", true],
    ["queue-a/$DeadLetterQueue", true],
    ["queue-a/$DeadLetterQueue/$management", true],
    // The documented rule is a prefix of the URI, not of its segments (resource-uri.ts).
    ["queue-ab", true],
    ["queue-b", false],
    ["", false],
  ])("sb://…/queue-a covers %j: %s", (resource, expected) => {
    expect(covers(scope, parseResourceUri(`sb://127.0.0.1/${resource}`)!)).toBe(expected);
  });

  it("ignores scheme, port and case, but not the host", () => {
    expect(covers(parseResourceUri("https://LOCALHOST:443/q")!, parseResourceUri("sb://localhost/q/x")!)).toBe(true);
    expect(covers(parseResourceUri("sb://other/q")!, parseResourceUri("sb://localhost/q")!)).toBe(false);
  });
});

describe("token check (CBS put-token and the administration API)", () => {
  it("accepts a token whose scope covers the audience and reports its claim", () => {
    const check = checkSasToken(token("node-1"), "sb://127.0.0.1:5672/node-1/$management", context);
    expect(check).toEqual({
      ok: true,
      claim: expect.objectContaining({ ruleName: "listen", rights: ["Listen"], scopeUri: "sb://127.0.0.1:5672/node-1", expiresAtMs: NOW + 3_600_000 }),
    });
  });

  it.each([
    ["an unknown rule", token("node-1", { rule: "nobody" }), "sb://127.0.0.1/node-1", /^InvalidSignature/],
    ["a wrong key", token("node-1", { key: "guess" }), "sb://127.0.0.1/node-1", /^InvalidSignature/],
    ["an expired token", token("node-1", { lifetime: 0 }), "sb://127.0.0.1/node-1", /^ExpiredToken/],
    ["another queue", token("node-1"), "sb://127.0.0.1/node-2", /^InvalidAudience/],
    ["the namespace root", token("node-1"), "sb://127.0.0.1/", /^InvalidAudience/],
    ["another namespace", token("node-1"), "sb://elsewhere.servicebus.windows.net/node-1", /^InvalidAudience/],
    ["garbage", "SharedAccessSignature nonsense", "sb://127.0.0.1/node-1", /^MalformedToken/],
  ])("refuses %s", (_label, text, audience, description) => {
    const check = checkSasToken(text, audience, context);
    expect(check.ok).toBe(false);
    expect(check.ok ? "" : check.description).toMatch(description);
  });

  it("accepts a token on a queue whose name extends the token's (the documented prefix rule)", () => {
    expect(checkSasToken(token("node-1"), "sb://127.0.0.1/node-10", context).ok).toBe(true);
  });

  it("treats Manage as implying Send and Listen", () => {
    expect(grants(["Manage"], "Send")).toBe(true);
    expect(grants(["Manage"], "Listen")).toBe(true);
    expect(grants(["Listen"], "Send")).toBe(false);
    expect(grants(["Send"], "Listen")).toBe(false);
  });
});
