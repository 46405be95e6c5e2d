/** Where one value of a JSON array sits in the bytes it was read from. */
export interface ByteRange {
  offset: number;
  length: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const isOpen = (byte: number) => byte === 0x7b || byte === 0x5b; // { [
const isClose = (byte: number) => byte === 0x7d || byte === 0x5d; // } ]
const isSpace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/**
 * The byte range of each value of the top-level JSON array in `body` (after an optional UTF-8 byte order
 * mark), in order: each value's bytes exactly as sent, without the whitespace and commas around it. Undefined
 * when the body is not a well-formed array at this level (its values are not checked: the caller has parsed
 * the body already). One pass over the bytes, no allocation per value beyond its range.
 */
export function jsonArrayItems(body: Uint8Array): ByteRange[] | undefined {
  let at = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (at < body.length && isSpace(body[at]!)) at++;
  if (body[at] !== 0x5b) return undefined;
  const items: ByteRange[] = [];
  let depth = 1;
  let start = -1;
  let end = -1;
  let inString = false;
  for (at++; at < body.length; at++) {
    const byte = body[at]!;
    if (inString) {
      if (byte === BACKSLASH) at++;
      else if (byte === QUOTE) {
        inString = false;
        end = at + 1;
      }
      continue;
    }
    if (isSpace(byte)) continue;
    if (depth === 1 && byte === COMMA) {
      if (start < 0) return undefined;
      items.push({ offset: start, length: end - start });
      start = -1;
      continue;
    }
    if (isClose(byte)) {
      depth--;
      if (depth === 0) {
        if (start >= 0) items.push({ offset: start, length: end - start });
        else if (items.length > 0) return undefined; // a trailing comma
        return items;
      }
      end = at + 1;
      continue;
    }
    if (depth === 1 && start < 0) start = at;
    if (isOpen(byte)) depth++;
    else if (byte === QUOTE) inString = true;
    end = at + 1;
  }
  return undefined;
}
