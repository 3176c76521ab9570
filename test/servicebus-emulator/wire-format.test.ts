import rhea from "rhea";
import { describe, expect, it } from "vitest";
import { BATCH_FORMAT, decodeBody, decodeMessage, encodeMessage, plainValues, splitBatch, withApplicationProperties, withMessageId } from "./amqp-message.js";
import { formatIsoDuration, NEVER_MS, parseIsoDuration, TIMESPAN_MAX } from "./iso-duration.js";
import { lockTokenFromWire, lockTokenToDeliveryTag } from "./lock-token.js";

describe("lock tokens", () => {
  it("go out as delivery tags in .NET Guid byte order and come back as RFC 4122 uuids", () => {
    const token = "00112233-4455-6677-8899-aabbccddeeff";
    expect(lockTokenToDeliveryTag(token).toString("hex")).toBe("33221100554477668899aabbccddeeff");
    expect(lockTokenFromWire(rhea.string_to_uuid(token))).toBe(token);
    expect(lockTokenFromWire(token.toUpperCase())).toBe(token);
    expect(lockTokenFromWire(Buffer.alloc(3))).toBeUndefined();
  });
});

describe("ISO 8601 durations", () => {
  it.each([
    ["PT1M", 60_000],
    ["PT30S", 30_000],
    ["PT1.2S", 1200],
    ["P1D", 86_400_000],
    ["P1DT2H3M4S", 93_784_000],
    [TIMESPAN_MAX, NEVER_MS],
  ])("%s is %d ms and formats back", (text, ms) => {
    expect(parseIsoDuration(text)).toBe(ms);
    expect(formatIsoDuration(ms)).toBe(text);
  });

  it("rejects what is not a duration", () => {
    for (const text of ["", "P", "PT", "30s", "PT-1S", "1M"]) expect(parseIsoDuration(text)).toBeUndefined();
    expect(formatIsoDuration(0)).toBe("PT0S");
    expect(formatIsoDuration(90_000)).toBe("PT1M30S");
  });
});

describe("AMQP messages as the broker keeps them", () => {
  const sent = rhea.message.encode({
    message_id: "m-1",
    subject: "step",
    ttl: 5000,
    message_annotations: { "x-opt-partition-key": "p" },
    application_properties: { small: 7, negative: -3, text: "x" },
    body: rhea.message.data_section(Buffer.from(JSON.stringify({ step: 1 }))),
  });

  it("keep the body and properties and rewrite header and annotations on delivery", () => {
    const bare = decodeMessage(sent);
    expect(bare.ttlMs).toBe(5000);
    expect(bare.properties).toMatchObject({ message_id: "m-1", subject: "step" });
    expect(plainValues(bare.applicationProperties)).toEqual({ small: 7, negative: -3, text: "x" });
    expect(decodeBody(bare)).toEqual({ step: 1 });

    const delivered = rhea.message.decode(
      encodeMessage(bare, { deliveryCount: 2, ttlMs: 4000, annotations: new Map([["x-opt-sequence-number", rhea.types.wrap_long(42)]]) }),
    );
    expect(delivered).toMatchObject({
      delivery_count: 2,
      ttl: 4000,
      message_id: "m-1",
      subject: "step",
      message_annotations: { "x-opt-partition-key": "p", "x-opt-sequence-number": 42 },
      application_properties: { small: 7, negative: -3, text: "x" },
    });
  });

  it("keep application property types when the broker adds properties", () => {
    const changed = withApplicationProperties(withMessageId(decodeMessage(sent), "assigned"), { DeadLetterReason: "Bad" });
    const reencoded = encodeMessage(changed, { deliveryCount: 0, ttlMs: undefined, annotations: new Map() });
    const typed = decodeMessage(reencoded).applicationProperties;
    expect(typed.get("negative")?.type.name).toBe(decodeMessage(sent).applicationProperties.get("negative")?.type.name);
    expect(rhea.message.decode(reencoded)).toMatchObject({ message_id: "assigned", application_properties: { DeadLetterReason: "Bad", small: 7 } });
  });

  it("split a batch transfer into its messages", () => {
    const inner = [rhea.message.encode({ body: "a" }), rhea.message.encode({ body: "b" })];
    const batch = rhea.message.encode({ body: rhea.message.data_sections(inner) });
    expect(BATCH_FORMAT).toBe(0x80013700);
    expect(splitBatch(batch).map((m) => rhea.message.decode(m).body as unknown)).toEqual(["a", "b"]);
  });
});
