import { and, eq, isNull, type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { apiKeys } from "../db/schema/index.js";
import { apiKeyMatches, apiKeyPrefix, generateApiKey } from "../domain/apiKey.js";

export interface IssuedKey {
  id: string;
  /** Shown once; only its hash is kept. */
  apiKey: string;
}

export async function issueApiKey(executor: Executor, tenantId: string, name?: string): Promise<IssuedKey> {
  const generated = generateApiKey();
  const [row] = await executor
    .insert(apiKeys)
    .values({ tenantId, name, prefix: generated.prefix, keyHash: generated.hash })
    .returning({ id: apiKeys.id });
  return { id: row!.id, apiKey: generated.key };
}

/** Revoke a key; it answers 401 from the next request on. False when no live key has that id. */
export async function revokeApiKey(executor: Executor, keyId: string): Promise<boolean> {
  const rows = await executor
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

export interface KeyOwner {
  tenantId: string;
  keyId: string;
}

/** The tenant of a presented key, or null (malformed, unknown, revoked). Cross-tenant: use the system db. */
export async function authenticateApiKey(executor: Executor, key: string): Promise<KeyOwner | null> {
  const prefix = apiKeyPrefix(key);
  if (prefix === undefined) return null;
  const [row] = await executor
    .select({
      id: apiKeys.id,
      tenantId: apiKeys.tenantId,
      keyHash: apiKeys.keyHash,
      revokedAt: apiKeys.revokedAt,
    })
    .from(apiKeys)
    .where(eq(apiKeys.prefix, prefix))
    // Every tenant request asks this: prepared once per connection, then one round trip.
    .prepare("api_key_by_prefix")
    .execute();
  if (!row || row.revokedAt !== null || !apiKeyMatches(key, row.keyHash)) return null;
  return { tenantId: row.tenantId, keyId: row.id };
}

/**
 * Whether a key is still live (not revoked). On the system connection, or in its tenant's transaction, where
 * row-level security shows that tenant's keys.
 */
/** That the key is live, as a condition for a statement to check itself (one round trip fewer). */
export const apiKeyLive = (keyId: string): SQL =>
  sql`exists (select 1 from api_keys where id = ${keyId}::uuid and revoked_at is null)`;

export async function apiKeyIsLive(executor: Executor, keyId: string): Promise<boolean> {
  const rows = await query(executor, sql`select 1 from api_keys where id = ${keyId} and revoked_at is null`, {
    prepare: true,
  });
  return rows.length > 0;
}
