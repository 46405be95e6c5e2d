import { type SQL, sql } from "drizzle-orm";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { type Db, query } from "../db/client.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import type { QueueDefinition } from "./definitions.js";
import type { Worker } from "./worker.js";

/**
 * Prometheus series for a worker, fed by its lifecycle events: claimed, processed, errors, dead letters,
 * lost leases, and the latency from a row's creation to its completion. Queue depth is read on scrape.
 */
export function instrumentWorker(worker: Worker, queue: QueueDefinition, registry: Registry): void {
  const series = queueSeries(registry);
  const labels = { queue: queue.name };
  worker.on("job:claimed", (rows) => series.claimed.inc(labels, rows.length));
  worker.on("job:completed", (rows) => {
    series.processed.inc(labels, rows.length);
    const now = Date.now();
    for (const row of rows) {
      const created = parseDbTimestamp(row.created_at).getTime();
      if (!Number.isNaN(created)) series.latency.observe(labels, Math.max(0, now - created) / 1000);
    }
  });
  worker.on("job:failed", () => series.errors.inc(labels));
  worker.on("job:dead", () => {
    series.errors.inc(labels);
    series.dead.inc(labels);
  });
  worker.on("job:lost", () => series.lost.inc(labels));
  worker.on("worker:error", () => series.workerErrors.inc(labels));
}

function createSeries(registry: Registry) {
  const registers = [registry];
  return {
    claimed: new Counter({
      name: "herald_queue_claimed_total",
      help: "Rows claimed",
      labelNames: ["queue"],
      registers,
    }),
    processed: new Counter({
      name: "herald_queue_processed_total",
      help: "Rows completed",
      labelNames: ["queue"],
      registers,
    }),
    errors: new Counter({
      name: "herald_queue_errors_total",
      help: "Failed attempts",
      labelNames: ["queue"],
      registers,
    }),
    dead: new Counter({
      name: "herald_queue_dead_letters_total",
      help: "Rows that became dead letters",
      labelNames: ["queue"],
      registers,
    }),
    lost: new Counter({
      name: "herald_queue_lost_leases_total",
      help: "Completions refused: lease lost",
      labelNames: ["queue"],
      registers,
    }),
    workerErrors: new Counter({
      name: "herald_worker_errors_total",
      help: "Worker loop errors (database unreachable…)",
      labelNames: ["queue"],
      registers,
    }),
    latency: new Histogram({
      name: "herald_queue_latency_seconds",
      help: "Row created → completed (for the outbox: event written → delivered)",
      labelNames: ["queue"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}

/**
 * `create` made once per registry: a registry refuses a second series of the same name, and a process may
 * build several apps or workers on one registry.
 */
export function perRegistry<T>(create: (registry: Registry) => T): (registry: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (registry) => {
    let series = made.get(registry);
    if (series === undefined) {
      series = create(registry);
      made.set(registry, series);
    }
    return series;
  };
}

const queueSeries = perRegistry(createSeries);

/** A queue's pending and processing rows, counted through their partial indexes (see below). */
export function queueDepthQuery(queue: QueueDefinition): SQL {
  const pending = (queue.pendingLanes ?? [sql`true`]).map(
    (lane) => sql`(select count(*) from ${queue.table} where status = 'pending' and ${lane})`,
  );
  return sql`select (${sql.join(pending, sql` + `)})::int as pending,
    (select count(*) from ${queue.table} where status = 'processing')::int as processing`;
}

/**
 * `herald_queue_depth{queue,status}` for pending and in-flight rows, read on scrape. Each count names one
 * status (and pending rows their lane), so it reads that partial index only: a condition on both statuses
 * at once matches no partial index, and scanned the whole table — the archive, the delivered outbox — on
 * every scrape. When the database cannot answer, the gauge keeps no value rather than a false 0.
 */
export function registerQueueDepth(registry: Registry, db: Db, queues: QueueDefinition[]): void {
  new Gauge({
    name: "herald_queue_depth",
    help: "Rows per queue and status",
    labelNames: ["queue", "status"],
    registers: [registry],
    async collect() {
      const rows = await Promise.all(
        queues.map((queue) =>
          query<{ pending: number; processing: number }>(db, queueDepthQuery(queue)).then(
            ([row]) => row,
            () => undefined,
          ),
        ),
      );
      // Read first, then reset and set with no await between: overlapping scrapes never see a half-filled gauge.
      this.reset();
      queues.forEach((queue, i) => {
        const row = rows[i];
        if (!row) return;
        this.set({ queue: queue.name, status: "pending" }, row.pending);
        this.set({ queue: queue.name, status: "processing" }, row.processing);
      });
    },
  });
}
