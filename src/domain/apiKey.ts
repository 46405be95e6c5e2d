import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** API keys: `hk_` + 32 random bytes (base64url). Only a SHA-256 hash and a lookup prefix are stored. */

const keyPattern = /^hk_[A-Za-z0-9_-]{43}$/;
const prefixLength = 12;

export interface GeneratedKey {
  key: string;
  prefix: string;
  hash: string;
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** The stored lookup prefix of a well-formed key, or undefined for anything else. */
export function apiKeyPrefix(key: string): string | undefined {
  return keyPattern.test(key) ? key.slice(3, 3 + prefixLength) : undefined;
}

export function generateApiKey(): GeneratedKey {
  const key = `hk_${randomBytes(32).toString("base64url")}`;
  return { key, prefix: apiKeyPrefix(key)!, hash: hashApiKey(key) };
}

/** Constant-time comparison of a presented key with a stored hash. */
export function apiKeyMatches(key: string, storedHash: string): boolean {
  const presented = Buffer.from(hashApiKey(key), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** Constant-time equality of two secrets of any length (hashing first hides the length). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}
