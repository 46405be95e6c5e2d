import { unstorableEscape, unstorableNumber } from "../domain/jsonbText.js";
import { defaultMaxJsonDepth, jsonPointer, tooDeepAt } from "../domain/jsonDepth.js";
import type { ParseResult } from "./types.js";

/**
 * A delivery body that is one JSON object, one event (Postmark's, Resend's): UTF-8 JSON, a leading BOM
 * allowed, refused where PostgreSQL could not store it as jsonb — the same door SendGrid's array goes through
 * (sendgrid.ts), for a body of one event.
 */

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const invalid = (detail: string, path = "/body"): ParseResult => ({
  ok: false,
  code: "validation_failed",
  detail,
  path,
});

/** The body's one event, or why it is refused; `provider` names the sender in the refusal. */
export function parseJsonEvent(body: Buffer, provider: string): ParseResult {
  let value: unknown;
  let text: string;
  try {
    text = utf8.decode(body);
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return { ok: false, code: "invalid_json", detail: "The body is not valid UTF-8 JSON", path: "/body" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return invalid(`The body must be a JSON object: ${provider} sends one event per request`);
  if (unstorableEscape(text))
    return invalid("The body holds a \\u0000 escape or an unpaired surrogate escape, which cannot be stored");
  if (unstorableNumber(text))
    return invalid("The body holds a number beyond PostgreSQL's numeric range, which cannot be stored");
  const deep = tooDeepAt(value, defaultMaxJsonDepth);
  if (deep)
    return invalid(`The event nests deeper than ${defaultMaxJsonDepth} levels`, jsonPointer("/body", deep));
  return { ok: true, events: [value as Record<string, unknown>], text };
}

/** A non-empty string, cut to 2,000 characters, else null. */
export const str = (v: unknown): string | null =>
  typeof v === "string" && v.length > 0 ? v.slice(0, 2000) : null;

// Values Herald indexes must fit a btree entry (see sendgrid.ts): a longer id or address stays in the payload.
const maxIndexedBytes = 2000;
export const indexable = (value: string | null) =>
  value !== null && Buffer.byteLength(value) <= maxIndexedBytes ? value : null;

/**
 * An ISO 8601 time, if plausible: from 2001 to a day after receipt (each month is a partition: a far-future
 * time would create them at will); anything else is when the delivery was received.
 */
export function plausibleTime(value: unknown, receivedAt: Date): Date {
  const ms = typeof value === "string" && value.length <= 64 ? Date.parse(value) : NaN;
  return Number.isFinite(ms) && ms > 978_307_200_000 && ms < receivedAt.getTime() + 86_400_000
    ? new Date(ms)
    : receivedAt;
}
