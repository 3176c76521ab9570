/**
 * The administration API's ATOM documents: a queue entry (QueueDescription with CountDetails), feeds, the error
 * body, and reading the flat QueueDescription the SDK sends on create/update.
 */
import { formatIsoDuration } from "./iso-duration.js";
import type { QueueSettings } from "./queue-settings.js";

const ATOM = "http://www.w3.org/2005/Atom";
const SB_CONNECT = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect";
const SB_COUNTS = "http://schemas.microsoft.com/netservices/2011/06/servicebus";
const XSI = "http://www.w3.org/2001/XMLSchema-instance";
const DECLARATION = '<?xml version="1.0" encoding="utf-8"?>';

export interface QueueView {
  name: string;
  /** Absolute URL of the queue resource, e.g. `https://127.0.0.1:5672/node-7?api-version=2021-05`. */
  url: string;
  author: string;
  settings: QueueSettings;
  createdAt: number;
  updatedAt: number;
  accessedAt: number;
  sizeInBytes: number;
  counts: { active: number; deadLettered: number; scheduled: number };
}

export function queueEntryDocument(view: QueueView): string {
  return DECLARATION + queueEntry(view);
}

export function feedDocument(options: { title: string; selfUrl: string; nextUrl?: string; entries: readonly QueueView[]; now: number }): string {
  const links = `<link rel="self" href="${escapeXml(options.selfUrl)}"/>` + (options.nextUrl ? `<link rel="next" href="${escapeXml(options.nextUrl)}"/>` : "");
  return (
    DECLARATION +
    `<feed xmlns="${ATOM}"><title type="text">${escapeXml(options.title)}</title><id>${escapeXml(options.selfUrl)}</id>` +
    `<updated>${iso(options.now)}</updated>${links}${options.entries.map(queueEntry).join("")}</feed>`
  );
}

/** What the service answers for a GET of an entity that does not exist: 200 with an empty feed. */
export function emptyFeedDocument(id: string, now: number): string {
  return (
    DECLARATION +
    `<feed xmlns="${ATOM}"><title type="text">Publicly Listed Services</title>` +
    `<subtitle type="text">This is the list of publicly-listed services currently available.</subtitle>` +
    `<id>${escapeXml(id)}</id><updated>${iso(now)}</updated><generator>Service Bus 1.1</generator></feed>`
  );
}

export function errorDocument(status: number, detail: string): string {
  return `<Error><Code>${status}</Code><Detail>${escapeXml(detail)}</Detail></Error>`;
}

/** The QueueDescription's simple child elements by name, or undefined when the body holds none. */
export function readQueueDescription(xml: string): Record<string, string> | undefined {
  const match = /<(?:\w+:)?QueueDescription\b[^>]*?(?:\/>|>([\s\S]*?)<\/(?:\w+:)?QueueDescription>)/.exec(xml);
  if (!match) return undefined;
  const inner = (match[1] ?? "").replace(/<(?:\w+:)?AuthorizationRules\b[\s\S]*?(?:\/>|<\/(?:\w+:)?AuthorizationRules>)/, "");
  const fields: Record<string, string> = {};
  for (const element of inner.matchAll(/<(?:\w+:)?(\w+)\b[^>]*?(?:\/>|>([^<]*)<\/(?:\w+:)?\1>)/g)) {
    fields[element[1]!] = unescapeXml(element[2] ?? "");
  }
  return fields;
}

function queueEntry(view: QueueView): string {
  const s = view.settings;
  const c = view.counts;
  const description =
    element("LockDuration", formatIsoDuration(s.lockDurationMs)) +
    element("MaxSizeInMegabytes", s.maxSizeInMegabytes) +
    element("RequiresDuplicateDetection", s.requiresDuplicateDetection) +
    element("RequiresSession", false) +
    element("DefaultMessageTimeToLive", formatIsoDuration(s.defaultMessageTimeToLiveMs)) +
    element("DeadLetteringOnMessageExpiration", s.deadLetteringOnMessageExpiration) +
    element("DuplicateDetectionHistoryTimeWindow", formatIsoDuration(s.duplicateDetectionHistoryTimeWindowMs)) +
    element("MaxDeliveryCount", s.maxDeliveryCount) +
    element("EnableBatchedOperations", s.enableBatchedOperations) +
    element("SizeInBytes", view.sizeInBytes) +
    element("MessageCount", c.active + c.deadLettered + c.scheduled) +
    element("IsAnonymousAccessible", false) +
    "<AuthorizationRules/>" +
    element("Status", s.status) +
    (s.userMetadata === undefined ? "" : element("UserMetadata", s.userMetadata)) +
    element("CreatedAt", iso(view.createdAt)) +
    element("UpdatedAt", iso(view.updatedAt)) +
    element("AccessedAt", iso(view.accessedAt)) +
    element("SupportOrdering", true) +
    `<CountDetails xmlns:d2p1="${SB_COUNTS}">` +
    element("d2p1:ActiveMessageCount", c.active) +
    element("d2p1:DeadLetterMessageCount", c.deadLettered) +
    element("d2p1:ScheduledMessageCount", c.scheduled) +
    element("d2p1:TransferMessageCount", 0) +
    element("d2p1:TransferDeadLetterMessageCount", 0) +
    "</CountDetails>" +
    element("AutoDeleteOnIdle", formatIsoDuration(s.autoDeleteOnIdleMs)) +
    element("EnablePartitioning", s.enablePartitioning) +
    element("EntityAvailabilityStatus", "Available") +
    element("EnableExpress", s.enableExpress) +
    element("MaxMessageSizeInKilobytes", s.maxMessageSizeInKilobytes);
  return (
    `<entry xmlns="${ATOM}"><id>${escapeXml(view.url)}</id><title type="text">${escapeXml(view.name)}</title>` +
    `<published>${iso(view.createdAt)}</published><updated>${iso(view.updatedAt)}</updated>` +
    `<author><name>${escapeXml(view.author)}</name></author><link rel="self" href="${escapeXml(view.url)}"/>` +
    `<content type="application/xml"><QueueDescription xmlns="${SB_CONNECT}" xmlns:i="${XSI}">${description}</QueueDescription></content></entry>`
  );
}

function element(name: string, value: string | number | boolean): string {
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

function unescapeXml(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
