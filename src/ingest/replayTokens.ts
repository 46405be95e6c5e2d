import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { WebhookSource } from "../db/schema/index.js";

/** Expired tokens of the source removed by each use, at most: the table never grows past the live ones for long. */
const sweepPerUse = 10;

/**
 * Record a token a signed request carried (`AuthContext.firstUse`): true the first time, or once its record
 * has expired; false for a replay. One statement, committed before the request is answered; concurrent uses
 * of one token meet on the primary key, and exactly one of them is first.
 */
export async function firstUse(
  executor: Executor,
  source: Pick<WebhookSource, "id" | "tenantId">,
  token: string,
  expiresAt: Date,
): Promise<boolean> {
  const rows = await query<{ first: boolean }>(
    executor,
    sql`with swept as (
      delete from webhook_replay_tokens where ctid in (select ctid from webhook_replay_tokens
        where source_id = ${source.id}::uuid and expires_at < now() limit ${sweepPerUse})
    )
    insert into webhook_replay_tokens as r (source_id, token, tenant_id, expires_at)
    values (${source.id}::uuid, ${token}, ${source.tenantId}::uuid, ${expiresAt.toISOString()}::timestamptz)
    on conflict (source_id, token) do update set expires_at = excluded.expires_at
      where r.expires_at < now()
    returning true as first`,
    { prepare: true },
  );
  return rows.length > 0;
}
