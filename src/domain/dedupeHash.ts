import { createHash } from "node:crypto";

/**
 * The key a provider event is stored once under (`message_event_keys.key_hash`): the MD5 of
 * `provider:dedupe_key` (UTF-8) as a UUID, what PostgreSQL's `md5(provider || ':' || dedupe_key)::uuid`
 * gives (migration 0031 made the existing keys so). Provider names hold no ":", so no two pairs share a text.
 */
export function dedupeHash(provider: string, dedupeKey: string): string {
  const hex = createHash("md5").update(`${provider}:${dedupeKey}`, "utf8").digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
