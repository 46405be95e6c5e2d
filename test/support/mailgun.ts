import { createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

/** A Mailgun webhook signing key for tests. */
export const mailgunSigningKey = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";

/** A fixture's `event-data` (test/fixtures/mailgun/<name>.json). */
export const mailgunEvent = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../fixtures/mailgun/${name}.json`, import.meta.url), "utf8"))[
    "event-data"
  ];

/**
 * A webhook body as Mailgun signs it: computed here with node:crypto, independently of the module (hex
 * HMAC-SHA256 of timestamp followed by token, keyed with the signing key). A fresh 50-character token each
 * time, as Mailgun sends one per request (its retries included).
 */
export function signedBody(
  eventData: Record<string, unknown>,
  options: { key?: string; timestamp?: number | string; token?: string; signature?: string } = {},
): { body: string; token: string; timestamp: string } {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const token = options.token ?? randomBytes(25).toString("hex");
  const signature =
    options.signature ??
    createHmac("sha256", options.key ?? mailgunSigningKey)
      .update(timestamp + token)
      .digest("hex");
  return {
    body: JSON.stringify({ signature: { timestamp, token, signature }, "event-data": eventData }),
    token,
    timestamp,
  };
}
