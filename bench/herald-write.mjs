// writeEvents throughput: B batches of 1,000 events (~300-byte payloads), with k matching subscriptions.
import { sql } from "drizzle-orm";
import { openDatabase } from "../dist/db/client.js";
import { migrate } from "../dist/db/migrate.js";
import { writeEvents } from "../dist/events/write.js";

const B = Number(process.env.B ?? 20);
const K = Number(process.env.K ?? 0);
const database = await openDatabase({ url: process.env.BENCH_URL, poolSize: 4 });
const db = database.db;
await migrate(db);
await db.execute(sql`truncate events, event_keys, outbox, subscriptions cascade`);
await db.execute(sql`insert into tenants (name) values ('bench') on conflict do nothing`);
const [{ id: tenantId }] = await db.execute(sql`select id from tenants where name = 'bench'`);
for (let k = 0; k < K; k++) {
  await db.execute(sql`insert into subscriptions (tenant_id, name, event_types, sink, secret)
    values (${tenantId}, ${`sub-${k}`}, '{contact.*}', '{"type":"handler","name":"noop"}', 'whsec_x')`);
}
const event = (i) => ({
  tenantId,
  eventType: "contact.updated",
  source: "system",
  contactId: `c${i}`,
  payload: {
    contactId: `c${i}`,
    email: `user${i}@example.com`,
    fields: ["name", "company"],
    note: "x".repeat(200),
  },
});
const batch = () => Array.from({ length: 1000 }, (_, i) => event(i));
await db.transaction((tx) => writeEvents(tx, batch())); // warm-up
const t0 = performance.now();
for (let b = 0; b < B; b++) await db.transaction((tx) => writeEvents(tx, batch()));
const ms = performance.now() - t0;
console.log(
  JSON.stringify({
    bench: "write",
    system: "herald",
    subscriptions: K,
    events_per_s: Math.round((B * 1000 * 1000) / ms),
  }),
);
await database.close();
