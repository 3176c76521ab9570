/**
 * The Table service's OData `$filter` subset, parsed once into a predicate over an entity's typed properties:
 * comparisons (eq ne gt ge lt le) between a property and a literal (either side), `and`, `or`, `not`, parentheses;
 * literals 'string' (with '' for a quote), datetime'…', guid'…', X'…'/binary'…', true/false, integers (L suffix for
 * Int64) and decimals. As the service does, a comparison with a property the entity lacks, or across types (a string
 * with a number), is false, whatever the operator.
 */
import type { Typed } from "./values.js";

export type Predicate = (property: (name: string) => Typed | undefined) => boolean;

type Token = { kind: "op" | "word" | "paren"; text: string } | { kind: "literal"; value: Typed };

const COMPARISONS = new Set(["eq", "ne", "gt", "ge", "lt", "le"]);

export class FilterError extends Error {}

export function parseFilter(text: string): Predicate {
  const tokens = tokenize(text);
  let at = 0;
  const peek = () => tokens[at];
  const take = () => {
    const t = tokens[at++];
    if (!t) throw new FilterError(`filter ends early: '${text}'`);
    return t;
  };
  const word = (w: string) => {
    const t = peek();
    return t !== undefined && t.kind === "word" && t.text.toLowerCase() === w;
  };

  /** `operand (keyword operand)*`, left to right. */
  function chain(keyword: string, operand: () => Predicate, join: (l: Predicate, r: Predicate) => Predicate): Predicate {
    let left = operand();
    while (word(keyword)) {
      at++;
      left = join(left, operand());
    }
    return left;
  }
  const or = (): Predicate => chain("or", and, (l, r) => (p) => l(p) || r(p));
  const and = (): Predicate => chain("and", not, (l, r) => (p) => l(p) && r(p));
  function not(): Predicate {
    if (word("not")) {
      at++;
      const inner = not();
      return (p) => !inner(p);
    }
    return comparison();
  }
  function comparison(): Predicate {
    const t = peek();
    if (t?.kind === "paren" && t.text === "(") {
      at++;
      const inner = or();
      const close = take();
      if (close.kind !== "paren" || close.text !== ")") throw new FilterError(`expected ')' in '${text}'`);
      return inner;
    }
    const left = operand();
    const op = take();
    if (op.kind !== "word" || !COMPARISONS.has(op.text.toLowerCase())) throw new FilterError(`expected a comparison operator in '${text}'`);
    const right = operand();
    const cmp = op.text.toLowerCase();
    return (p) => {
      const a = left(p);
      const b = right(p);
      if (a === undefined || b === undefined) return false;
      const order = compare(a, b);
      if (order === undefined) return false;
      return cmp === "eq"
        ? order === 0
        : cmp === "ne"
          ? order !== 0
          : cmp === "gt"
            ? order > 0
            : cmp === "ge"
              ? order >= 0
              : cmp === "lt"
                ? order < 0
                : order <= 0;
    };
  }
  function operand(): (p: Parameters<Predicate>[0]) => Typed | undefined {
    const t = take();
    if (t.kind === "literal") return () => t.value;
    if (t.kind === "word" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(t.text)) return (p) => p(t.text);
    throw new FilterError(`unexpected '${"text" in t ? t.text : "literal"}' in '${text}'`);
  }

  const predicate = or();
  if (at !== tokens.length) throw new FilterError(`unexpected text after the filter in '${text}'`);
  return predicate;
}

/**
 * The RowKey range a filter confines its matches to: from the `RowKey ge|gt|eq 'x'` and `RowKey le|lt|eq 'y'`
 * comparisons of a filter that joins its comparisons with `and` only (so each of them must hold). Inclusive at both
 * ends, so a row at a `gt`/`lt` bound is still read and tested; a filter with `or` or `not` gives no range.
 */
export function rowKeyRange(text: string): { from?: string; to?: string } {
  let tokens: Token[];
  try {
    tokens = tokenize(text);
  } catch {
    return {};
  }
  const range: { from?: string; to?: string } = {};
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "word") continue;
    const w = t.text.toLowerCase();
    if (w === "or" || w === "not") return {};
    const op = tokens[i + 1];
    const literal = tokens[i + 2];
    if (t.text !== "RowKey" || op?.kind !== "word" || literal?.kind !== "literal" || literal.value.type !== "Edm.String") continue;
    const value = String(literal.value.value);
    const cmp = op.text.toLowerCase();
    if ((cmp === "ge" || cmp === "gt" || cmp === "eq") && (range.from === undefined || value > range.from)) range.from = value;
    if ((cmp === "le" || cmp === "lt" || cmp === "eq") && (range.to === undefined || value < range.to)) range.to = value;
  }
  return range;
}

/** Ordinal order of two typed values, or undefined when they do not compare (different kinds). */
function compare(a: Typed, b: Typed): number | undefined {
  const numeric = (t: Typed) => t.type === "Edm.Int32" || t.type === "Edm.Int64" || t.type === "Edm.Double";
  if (numeric(a) && numeric(b)) {
    const x = Number(a.value);
    const y = Number(b.value);
    return x === y ? 0 : x < y ? -1 : 1;
  }
  if (a.type !== b.type) return undefined;
  if (a.type === "Edm.DateTime") {
    const x = Date.parse(a.value as string);
    const y = Date.parse(b.value as string);
    return x === y ? 0 : x < y ? -1 : 1;
  }
  if (a.type === "Edm.Boolean") return Number(a.value) - Number(b.value);
  const x = String(a.value);
  const y = String(b.value);
  const [xs, ys] = a.type === "Edm.Guid" ? [x.toLowerCase(), y.toLowerCase()] : [x, y];
  return xs === ys ? 0 : xs < ys ? -1 : 1;
}

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "(" || c === ")") {
      out.push({ kind: "paren", text: c });
      i++;
      continue;
    }
    const prefixed = /^(datetime|guid|X|binary)'/i.exec(text.slice(i));
    if (c === "'" || prefixed) {
      const start = i + (prefixed ? prefixed[1]!.length : 0) + 1;
      let j = start;
      let value = "";
      for (;;) {
        if (j >= text.length) throw new FilterError(`unterminated literal in '${text}'`);
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += text[j++];
      }
      i = j + 1;
      const kind = prefixed?.[1]!.toLowerCase();
      if (kind === "datetime") {
        if (Number.isNaN(Date.parse(value))) throw new FilterError(`bad datetime literal '${value}'`);
        out.push({ kind: "literal", value: { type: "Edm.DateTime", value } });
      } else if (kind === "guid") out.push({ kind: "literal", value: { type: "Edm.Guid", value } });
      else if (kind === "x" || kind === "binary")
        out.push({ kind: "literal", value: { type: "Edm.Binary", value: Buffer.from(value, "hex").toString("base64") } });
      else out.push({ kind: "literal", value: { type: "Edm.String", value } });
      continue;
    }
    const number = /^-?\d+(\.\d+)?([eE][+-]?\d+)?(L)?/.exec(text.slice(i));
    if (number && (i === 0 || !/[A-Za-z0-9_]/.test(text[i - 1]!))) {
      i += number[0].length;
      if (number[3]) out.push({ kind: "literal", value: { type: "Edm.Int64", value: number[0].slice(0, -1) } });
      else if (number[1] || number[2]) out.push({ kind: "literal", value: { type: "Edm.Double", value: Number(number[0]) } });
      else out.push({ kind: "literal", value: { type: "Edm.Int32", value: Number(number[0]) } });
      continue;
    }
    const w = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!w) throw new FilterError(`unexpected character '${c}' in '${text}'`);
    i += w[0].length;
    const lower = w[0].toLowerCase();
    if (lower === "true" || lower === "false") out.push({ kind: "literal", value: { type: "Edm.Boolean", value: lower === "true" } });
    else out.push({ kind: "word", text: w[0] });
  }
  return out;
}
