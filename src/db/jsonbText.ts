/**
 * What PostgreSQL's `jsonb` refuses in JSON text that is otherwise valid: a body Herald accepts must be one it
 * can store and process, so these are checked where the text arrives, before anything is acknowledged.
 */

/**
 * Whether JSON text holds a `\u0000` escape, or a surrogate escape not in a high + low pair (jsonb refuses
 * both). A run of backslashes before the `u` is an escape only when it is odd (`\\u0000` is text).
 */
export function unstorableEscape(text: string): boolean {
  if (!/\\u(?:0000|d[89a-f])/i.test(text)) return false; // the common case: nothing to look at
  const escapes = /(\\+)u([0-9a-fA-F]{4})/g;
  let lowExpectedAt = -1;
  for (let m = escapes.exec(text); m !== null; m = escapes.exec(text)) {
    if (m[1]!.length % 2 === 0) continue;
    const at = m.index + m[1]!.length - 1;
    const code = Number.parseInt(m[2]!, 16);
    const low = code >= 0xdc00 && code <= 0xdfff;
    if (lowExpectedAt !== -1) {
      if (at !== lowExpectedAt || !low) return true;
      lowExpectedAt = -1;
    } else if (code === 0 || low) {
      return true;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      lowExpectedAt = escapes.lastIndex;
    }
  }
  return lowExpectedAt !== -1;
}

// numeric's limits: 131,072 digits before the decimal point, 16,383 after (counted as written, after the
// exponent moves the point), and an exponent below (2^31 - 1) / 2.
const maxWeight = 131_072;
const maxScale = 16_383;
const maxExponent = 1_073_741_822;

/**
 * Whether JSON text holds a number that `numeric` (which jsonb stores numbers as) overflows, such as `1e131072`
 * or `1e-16384`. Only numbers are read: strings are matched whole and skipped. Overflow takes an exponent of
 * four digits or more, or a literal 15,000 characters long; without either the text is not read any further.
 * `parsedValuesOdd` false says the caller's `JSON.parse` gave no infinity and no zero (see
 * `numberNeedsTextCheck`): then exponents cannot overflow, and only a literal that long is looked for.
 */
export function unstorableNumber(text: string, parsedValuesOdd = true): boolean {
  const bigExponent = parsedValuesOdd && /[eE][+-]?\d{4}/.test(text);
  if (!bigExponent && !hasLongLiteral(text)) return false;
  const tokens = /"(?:[^"\\]|\\.)*"|-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/g;
  for (let m = tokens.exec(text); m !== null; m = tokens.exec(text)) {
    if (m[1] !== undefined && numberOverflows(m[1], m[2] ?? "", m[3])) return true;
  }
  return false;
}

const longLiteral = 15_000;
const digitOrPoint = (code: number) => (code >= 48 && code <= 57) || code === 46;

/**
 * Whether the text holds a run of `longLiteral` digits and points. Such a run covers one of the positions
 * half that length apart, so only those are probed, each widened to its whole run: a glance, not a scan.
 */
function hasLongLiteral(text: string): boolean {
  const step = longLiteral / 2;
  for (let at = step - 1; at < text.length; at += step) {
    if (!digitOrPoint(text.charCodeAt(at))) continue;
    let start = at;
    while (start > 0 && digitOrPoint(text.charCodeAt(start - 1))) start--;
    let end = at + 1;
    while (end < text.length && end - start < longLiteral && digitOrPoint(text.charCodeAt(end))) end++;
    if (end - start >= longLiteral) return true;
  }
  return false;
}

function numberOverflows(whole: string, fraction: string, exponentText: string | undefined): boolean {
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  if (Math.abs(exponent) > maxExponent) return true;
  if (fraction.length - exponent > maxScale) return true;
  const significantWhole = whole.replace(/^0+/, "");
  const significantFraction = fraction.replace(/^0+/, "");
  if (significantWhole === "" && significantFraction === "") return false; // zero has no weight
  // Where the first significant digit sits: digits before the point, or minus the zeros after it.
  const firstDigit =
    significantWhole !== "" ? significantWhole.length : significantFraction.length - fraction.length;
  return firstDigit + exponent > maxWeight;
}

/**
 * Whether a number as `JSON.parse` read it may come from an exponent that numeric overflows: only infinity or
 * zero can. A finite, non-zero double lies within 10^±324, and so, from a literal shorter than 15,000
 * characters, keeps both the digits before the point and those after it inside numeric's limits.
 */
export const numberNeedsTextCheck = (n: number): boolean => n === 0 || !Number.isFinite(n);
