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
 * or `1e-16384`. Read from the text, not from parsed values: `JSON.parse` keeps only the last of repeated keys,
 * and PostgreSQL converts every number. Overflow takes an exponent of four digits or more, or a run of
 * 15,000 digits and points (with an exponent of three digits or fewer, going past `maxScale` takes more
 * than 15,384 digits after the point); without either, nothing is read any further.
 */
export function unstorableNumber(text: string): boolean {
  // Spelled \d\d\d\d: V8 runs that three times faster than \d{4} over a webhook body.
  if (!/[eE][+-]?\d\d\d\d/.test(text) && !hasLongRun(text)) return false;
  for (let at = 0; at < text.length; ) {
    const code = text.charCodeAt(at);
    if (code === 34) {
      at = stringEnd(text, at);
    } else if (code === 45 || digit(code)) {
      const number = readNumber(text, at);
      if (numberOverflows(number.whole, number.fraction, number.exponent)) return true;
      at = number.end;
    } else {
      at++;
    }
  }
  return false;
}

const digit = (code: number) => code >= 48 && code <= 57;

/** Where the JSON string opening at `start` ends (just past its closing quote; the text's end if none). */
function stringEnd(text: string, start: number): number {
  for (let quote = text.indexOf('"', start + 1); quote !== -1; quote = text.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
  }
  return text.length;
}

/** The JSON number starting at `start` (an optional minus, digits, fraction, exponent), by its parts. */
function readNumber(text: string, start: number) {
  let at = start + (text.charCodeAt(start) === 45 ? 1 : 0);
  const digitsFrom = (from: number) => {
    let end = from;
    while (end < text.length && digit(text.charCodeAt(end))) end++;
    return end;
  };
  const wholeEnd = digitsFrom(at);
  const whole = text.slice(at, wholeEnd);
  at = wholeEnd;
  let fraction = "";
  if (text.charCodeAt(at) === 46) {
    const fractionEnd = digitsFrom(at + 1);
    fraction = text.slice(at + 1, fractionEnd);
    at = fractionEnd;
  }
  let exponent: string | undefined;
  const e = text.charCodeAt(at);
  if (e === 101 || e === 69) {
    const sign = text.charCodeAt(at + 1);
    const from = at + 1 + (sign === 43 || sign === 45 ? 1 : 0);
    const exponentEnd = digitsFrom(from);
    exponent = text.slice(at + 1, exponentEnd);
    at = exponentEnd;
  }
  return { whole, fraction, exponent, end: Math.max(at, start + 1) };
}

const longRun = 15_000;
const digitOrPoint = (code: number) => digit(code) || code === 46;

/**
 * Whether the text holds a run of `longRun` digits and points. Such a run covers one of the positions half
 * that length apart, so only those are probed, each widened to its whole run: a glance, not a scan.
 */
function hasLongRun(text: string): boolean {
  const step = longRun / 2;
  for (let at = step - 1; at < text.length; at += step) {
    if (!digitOrPoint(text.charCodeAt(at))) continue;
    let start = at;
    while (start > 0 && digitOrPoint(text.charCodeAt(start - 1))) start--;
    let end = at + 1;
    while (end < text.length && end - start < longRun && digitOrPoint(text.charCodeAt(end))) end++;
    if (end - start >= longRun) return true;
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
