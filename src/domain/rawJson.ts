import { randomUUID } from "node:crypto";

/**
 * A JSON value kept as the exact text it arrived as (a provider's event as it sent it: its key order, its
 * spacing, numbers beyond a double's precision). `jsonWithRaw` writes it into an answer byte for byte; any
 * other serializer gets it parsed (`toJSON`).
 */
export class RawJson {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    // Within `jsonWithRaw`, itself: its replacer writes the text as it is, and nothing is parsed for nothing.
    return writing ? this : JSON.parse(this.text);
  }
}

/** Whether `jsonWithRaw` is stringifying (synchronous: no other code runs meanwhile). */
let writing = false;

/**
 * `JSON.stringify(value)`, each `RawJson` inside written as its own text. Each stands in the stringified
 * text as a string token carrying a nonce of this call (NUL characters are escaped in JSON strings, so no
 * other string of the value can look like one, whatever it holds), which is then replaced by the text.
 */
export function jsonWithRaw(value: unknown): string {
  const nonce = randomUUID();
  const raws: string[] = [];
  let text: string;
  writing = true;
  try {
    text = JSON.stringify(value, (_key, item) => {
      if (!(item instanceof RawJson)) return item;
      raws.push(item.text);
      return `\u0000${nonce}:${raws.length - 1}\u0000`;
    });
  } finally {
    writing = false;
  }
  if (raws.length === 0) return text;
  const token = new RegExp(`"\\\\u0000${nonce}:(\\d+)\\\\u0000"`, "g");
  return text.replace(token, (_, at: string) => raws[Number(at)]!);
}
