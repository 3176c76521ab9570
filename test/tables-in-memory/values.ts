/**
 * Entity properties as the Table service types them, and their JSON with `odata=minimalmetadata`: strings, booleans
 * and Int32 go bare; Int64, DateTime, Guid and Binary carry `name@odata.type`. An unannotated JSON number is Int32
 * when it is an integer in range, Double otherwise.
 */
export type EdmType = "Edm.String" | "Edm.Boolean" | "Edm.Int32" | "Edm.Int64" | "Edm.Double" | "Edm.DateTime" | "Edm.Guid" | "Edm.Binary";
export interface Typed {
  type: EdmType;
  /** Int64 as its decimal string; DateTime as the ISO string written; Binary as base64. */
  value: string | number | boolean;
}
export type Properties = Map<string, Typed>;

const TYPES = new Set<EdmType>(["Edm.String", "Edm.Boolean", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.DateTime", "Edm.Guid", "Edm.Binary"]);
const ANNOTATION = "@odata.type";

/** An entity the service refuses: 400 with `code`; InvalidInput's message is appended to the service's generic one. */
export class BadEntity extends Error {
  constructor(
    message: string,
    readonly code: "InvalidInput" | "PropertyValueTooLarge" | "EntityTooLarge" = "InvalidInput",
  ) {
    super(message);
  }
}

/**
 * One property's limit, 64 KiB: a string counts UTF-16 code units (JavaScript's `length`, at most 32,768), a Binary
 * its decoded bytes. Azurite (TableHandler.checkProperties) and Azure refuse more with 400 PropertyValueTooLarge.
 */
export const MAX_PROPERTY_BYTES = 64 * 1024;
const PROPERTY_TOO_LARGE =
  "The property value exceeds the maximum allowed size (64KB). If the property value is a string, it is UTF-16 encoded and the maximum number of characters should be 32K or less.";
/** An entity's limit, 1 MiB, as Azure sizes it (entitySize); Azure answers 400 EntityTooLarge. */
export const MAX_ENTITY_BYTES = 1024 * 1024;

/**
 * An entity's size as Azure counts it against MAX_ENTITY_BYTES ("Understanding the Table service data model"): 4 bytes,
 * plus the keys in UTF-16, plus per property 8 bytes, its name in UTF-16 and its value (a string 4 + 2 per UTF-16
 * unit, a Binary 4 + its bytes, Int32 4, Int64, Double and DateTime 8, Guid 16, Boolean 1).
 */
export function entitySize(pk: string, rk: string, properties: Properties): number {
  let bytes = 4 + 2 * (pk.length + rk.length);
  for (const [name, t] of properties) bytes += 8 + 2 * name.length + valueSize(t);
  return bytes;
}

function valueSize(t: Typed): number {
  switch (t.type) {
    case "Edm.String":
      return 4 + 2 * String(t.value).length;
    case "Edm.Binary":
      return 4 + Buffer.from(String(t.value), "base64").length;
    case "Edm.Boolean":
      return 1;
    case "Edm.Int32":
      return 4;
    case "Edm.Guid":
      return 16;
    default:
      return 8;
  }
}

function checkSize(t: Typed): void {
  const over =
    t.type === "Edm.Binary"
      ? Buffer.from(String(t.value), "base64").length > MAX_PROPERTY_BYTES
      : typeof t.value === "string" && t.value.length > MAX_PROPERTY_BYTES / 2;
  if (over) throw new BadEntity(PROPERTY_TOO_LARGE, "PropertyValueTooLarge");
}

/** Reads an entity body; PartitionKey, RowKey, Timestamp and odata.* are not properties. */
export function propertiesOf(body: Record<string, unknown>): Properties {
  const out: Properties = new Map();
  for (const [name, raw] of Object.entries(body)) {
    if (name.endsWith(ANNOTATION) || name.startsWith("odata.") || name === "PartitionKey" || name === "RowKey" || name === "Timestamp") continue;
    if (raw === null || raw === undefined) continue;
    const annotated = body[`${name}${ANNOTATION}`];
    if (annotated !== undefined) {
      if (typeof annotated !== "string" || !TYPES.has(annotated as EdmType)) throw new BadEntity(`unknown type '${String(annotated)}' for '${name}'`);
      const type = annotated as EdmType;
      if (type === "Edm.DateTime" && (typeof raw !== "string" || Number.isNaN(Date.parse(raw)))) throw new BadEntity(`'${name}' is not a DateTime`);
      if (type === "Edm.Int64" && !(typeof raw === "string" && /^-?\d+$/.test(raw))) throw new BadEntity(`'${name}' is not an Int64`);
      out.set(name, { type, value: raw as Typed["value"] });
      continue;
    }
    if (typeof raw === "string") out.set(name, { type: "Edm.String", value: raw });
    else if (typeof raw === "boolean") out.set(name, { type: "Edm.Boolean", value: raw });
    else if (typeof raw === "number")
      out.set(name, { type: Number.isInteger(raw) && raw >= -(2 ** 31) && raw < 2 ** 31 ? "Edm.Int32" : "Edm.Double", value: raw });
    else throw new BadEntity(`'${name}' has a value the Table service does not store (${typeof raw})`);
  }
  if (out.size > 252) throw new BadEntity("an entity holds at most 252 properties besides PartitionKey, RowKey and Timestamp");
  for (const t of out.values()) checkSize(t);
  return out;
}

/** An entity's JSON as the service answers it, limited to `select` when given. */
export function entityJson(
  row: { partitionKey: string; rowKey: string; timestamp: string; etag: string; properties: Properties },
  select?: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { "odata.etag": row.etag };
  const wanted = (name: string) => !select || select.includes(name);
  if (wanted("PartitionKey")) out.PartitionKey = row.partitionKey;
  if (wanted("RowKey")) out.RowKey = row.rowKey;
  for (const [name, t] of row.properties) {
    if (!wanted(name)) continue;
    if (t.type === "Edm.Int64" || t.type === "Edm.DateTime" || t.type === "Edm.Guid" || t.type === "Edm.Binary") out[`${name}${ANNOTATION}`] = t.type;
    out[name] = t.value;
  }
  if (wanted("Timestamp")) out.Timestamp = row.timestamp;
  return out;
}
