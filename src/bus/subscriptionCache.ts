import { sql } from "drizzle-orm";
import { type Db, query } from "../db/client.js";
import type { SubscriptionSink } from "../db/schema/index.js";
import type { Clock } from "../domain/clock.js";
import { systemClock } from "../domain/clock.js";

export interface SubscriptionTarget {
  id: string;
  name: string;
  sink: SubscriptionSink;
  secret: string;
}

/**
 * Where deliveries go, cached by the dispatcher for `ttlMs` so a claim need not return the subscription
 * with every row. A changed sink or secret applies within the TTL; pausing and deleting act at once (the
 * claim filters paused subscriptions, and deleting one deletes its outbox rows). Concurrent misses for one
 * id share a single query.
 */
export class SubscriptionCache {
  private readonly entries = new Map<
    string,
    { at: number; value: Promise<SubscriptionTarget | undefined> }
  >();

  constructor(
    private readonly db: Db,
    private readonly ttlMs = 1000,
    private readonly clock: Clock = systemClock,
  ) {}

  get(id: string): Promise<SubscriptionTarget | undefined> {
    const now = this.clock.now().getTime();
    const cached = this.entries.get(id);
    if (cached && now - cached.at < this.ttlMs) return cached.value;
    const value = query<SubscriptionTarget>(
      this.db,
      sql`select id, name, sink, secret from subscriptions where id = ${id}`,
      { prepare: true },
    ).then((rows) => {
      const row = rows[0];
      return (
        row && {
          ...row,
          sink: (typeof row.sink === "string" ? JSON.parse(row.sink) : row.sink) as SubscriptionSink,
        }
      );
    });
    this.entries.set(id, { at: now, value });
    value.catch(() => this.entries.delete(id));
    return value;
  }
}
