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

export class BadEntity extends Error {}

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
