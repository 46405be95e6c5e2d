// Emmett's PostgreSQL event store appending the same batches: B batches of 1,000 events, each to a new stream,
// sequentially (as ../shared/peers/emmett-append.mjs measures it).
import { getPostgreSQLEventStore } from "@event-driven-io/emmett-postgresql";

const B = Number(process.env.B ?? 20);
const store = getPostgreSQLEventStore(process.env.BENCH_URL);
await store.schema.migrate();
const event = (i) => ({
  type: "ContactUpdated",
  data: {
    contactId: `c${i}`,
    email: `user${i}@example.com`,
    fields: ["name", "company"],
    note: "x".repeat(200),
  },
});
await store.appendToStream(
  "warmup",
  Array.from({ length: 1000 }, (_, i) => event(i)),
);
const t0 = performance.now();
for (let b = 0; b < B; b++)
  await store.appendToStream(
    `s-${b}-${Date.now()}`,
    Array.from({ length: 1000 }, (_, i) => event(i)),
  );
const ms = performance.now() - t0;
console.log(
  JSON.stringify({
    bench: "write",
    system: "emmett",
    subscriptions: 0,
    events_per_s: Math.round((B * 1000 * 1000) / ms),
  }),
);
await store.close();
