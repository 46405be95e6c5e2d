// npm run bench:query — the event log's read side at scale, over HTTP, on one PostgreSQL server.
// Seeds EVENTS events (default 10,000,000; `--events N` or EVENTS=N for quick runs) over 100 tenants, one of
// them holding 30 %, spread over the last 30 days, through Herald's bulk path (`writeEvents`, batches of
// 2,000, two writers), with `message.*` and a dozen other types, contacts (≤ 200 events each) and sessions.
// Then the rollups are brought up to date and `herald serve` answers RUNS requests of each query for the big
// tenant, one at a time: p50 and p95 per query. Beside each stats query, the same numbers computed the naive
// way (a GROUP BY over the rows, a few runs) for comparison. One JSON line per result.

import { spawn } from "node:child_process";
import http from "node:http";
import postgres from "postgres";
import { dropDatabase, freshDatabase, percentile, round } from "./lib.mjs";

const argEvents = process.argv.indexOf("--events");
const EVENTS = Number(argEvents > 0 ? process.argv[argEvents + 1] : (process.env.EVENTS ?? 10_000_000));
const RUNS = Number(process.env.RUNS ?? 200);
const TENANTS = 100;
const BIG_SHARE = 0.3;
const DAYS = 30;
const BATCH = 2000;
const WRITERS = 2;
const database = "herald_query_bench";
const print = (line) => console.log(JSON.stringify(line));
const progress = (text) => process.stderr.write(`\r${text}`.padEnd(70));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { openDatabase } = await import("../dist/db/client.js");
const { migrate } = await import("../dist/db/migrate.js");
const { preparePartitions } = await import("../dist/db/partitions.js");
const { createTenant } = await import("../dist/tenancy/tenants.js");
const { writeEvents } = await import("../dist/events/write.js");
const rollups = await import("../dist/events/rollups.js").catch(() => undefined);

const messageTypes = [
  "sent",
  "delivered",
  "open",
  "click",
  "bounce",
  "deferred",
  "dropped",
  "spam_report",
].map((t) => `message.${t}`);
const otherTypes = [
  "contact.created",
  "contact.updated",
  "order.placed",
  "order.shipped",
  "order.refunded",
  "session.started",
  "session.ended",
  "page.viewed",
  "cart.updated",
  "login.succeeded",
  "login.failed",
  "invoice.paid",
];
const sources = ["system", "webhook", "manual", "cron", "workflow"];

/** A seeded pseudo-random sequence, so two runs seed the same log. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

const url = await freshDatabase(database);
const herald = await openDatabase({ url, poolSize: WRITERS + 2 });
let child;
try {
  await migrate(herald.db);
  const now = Date.now();
  const first = now - DAYS * 86_400_000;
  await preparePartitions(herald.db, ["events"], [new Date(first), new Date(now)]);
  const tenants = [];
  for (let i = 0; i < TENANTS; i++) tenants.push(await createTenant(herald.db, `tenant-${i}`));
  const big = tenants[0];
  const perTenant = (i) => (i === 0 ? EVENTS * BIG_SHARE : (EVENTS * (1 - BIG_SHARE)) / (TENANTS - 1));
  // Contacts of ~100 events each (at most 200), sessions of ~20.
  const contactsOf = (i) => Math.max(1, Math.round(perTenant(i) / 100));
  const sessionsOf = (i) => Math.max(1, Math.round(perTenant(i) / 20));

  // Seeding: the log in time order (jittered), each batch spread over the tenants by their share.
  const next = random(42);
  const pickTenant = () => (next() < BIG_SHARE ? 0 : 1 + Math.floor(next() * (TENANTS - 1)));
  let written = 0;
  const started = performance.now();
  const batches = Math.ceil(EVENTS / BATCH);
  let issued = 0;
  const writer = async () => {
    while (issued < batches) {
      const b = issued++;
      const size = Math.min(BATCH, EVENTS - b * BATCH);
      const events = Array.from({ length: size }, (_, j) => {
        const t = pickTenant();
        const at = first + ((b * BATCH + j) / EVENTS) * (now - first - 60_000) + Math.floor(next() * 1000);
        const message = next() < 0.6;
        return {
          tenantId: tenants[t].tenant.id,
          eventType: message
            ? messageTypes[Math.floor(next() * messageTypes.length)]
            : otherTypes[Math.floor(next() * otherTypes.length)],
          source: message ? "webhook" : sources[Math.floor(next() * sources.length)],
          timestamp: new Date(at),
          contactId: next() < 0.9 ? `c${Math.floor(next() * contactsOf(t))}` : null,
          sessionId: next() < 0.5 ? `s${Math.floor(next() * sessionsOf(t))}` : null,
          correlationId: next() < 0.2 ? `corr-${Math.floor(next() * 1e6)}` : null,
          payload: { n: b * BATCH + j, note: "seeded by bench:query" },
        };
      });
      await writeEvents(herald.db, events);
      written += size;
      if (b % 25 === 0) {
        const s = (performance.now() - started) / 1000;
        progress(
          `seeding ${written.toLocaleString()} / ${EVENTS.toLocaleString()} (${Math.round(written / s)} events/s)`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  const seedS = (performance.now() - started) / 1000;
  process.stderr.write("\n");

  const admin = postgres(url, { max: 1, onnotice: () => {} });
  progress("vacuum analyze");
  await admin.unsafe("vacuum analyze");
  let rollupS = 0;
  if (rollups?.rebuildRollups) {
    const t = performance.now();
    await rollups.rebuildRollups(herald.db, (done) => progress(`rollups: ${done.toLocaleString()} events`));
    // The projection reads only transactions older than every one running on the server (any database):
    // a rebuild can stop short while another transaction is open. Project until the checkpoint is the end.
    const end = async () => {
      const [row] = await admin`select (select position from event_rollup_checkpoint) as at,
        (select max(position) from events) as last`;
      return Number(row.at) >= Number(row.last);
    };
    while (!(await end())) {
      const read = await rollups.projectRollups(herald.db, 10_000);
      if (read === 0) await sleep(200);
    }
    rollupS = (performance.now() - t) / 1000;
    await admin.unsafe("vacuum analyze");
  }
  process.stderr.write("\n");
  print({
    bench: "query_seed",
    events: EVENTS,
    tenants: TENANTS,
    big_tenant_events: Math.round(perTenant(0)),
    seed_s: round(seedS, 1),
    seed_events_per_s: Math.round(EVENTS / seedS),
    rollup_s: round(rollupS, 1),
  });

  // The API in its own process, as deployed (no workers: the rollups are current and nothing is written).
  const port = 3800 + Math.floor(Math.random() * 90);
  child = spawn(process.execPath, ["dist/cli/main.js", "serve"], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      HERALD_SERVE_WORKERS: "off",
      LOG_LEVEL: "warn",
      PORT: String(port),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  for (let i = 0; i < 400 && !out.includes("API docs"); i++) await sleep(50);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path) =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      const request = http.get(
        `http://127.0.0.1:${port}${path}`,
        { agent, headers: { authorization: `Bearer ${big.apiKey}` } },
        (response) => {
          let text = "";
          response.on("data", (d) => {
            text += d;
          });
          response.on("end", () => {
            if (response.statusCode !== 200) reject(new Error(`${path}: ${response.statusCode} ${text}`));
            else resolve({ ms: performance.now() - t, body: JSON.parse(text) });
          });
        },
      );
      request.on("error", reject);
    });
  const iso = (ms) => new Date(ms).toISOString();
  const q = random(7);
  const weekStart = () =>
    iso(first + Math.floor(q() * (DAYS - 7)) * 86_400_000 + Math.floor(q() * 3_600_000));
  const weekAfter = (start) => iso(Date.parse(start) + 7 * 86_400_000);
  const contact = () => `c${Math.floor(q() * contactsOf(0))}`;
  const queries = {
    newest_page: () => "/api/v1/events?limit=50",
    type_prefix_7d: () => {
      const start = weekStart();
      return `/api/v1/events?type=message.*&start=${start}&end=${weekAfter(start)}&limit=50`;
    },
    contact_timeline: () => `/api/v1/contacts/${contact()}/events?limit=200`,
    count_contact: () => `/api/v1/events/count?contact_id=${contact()}`,
    stats_type_30d: () => `/api/v1/events/stats?group_by=type&start=${iso(first)}&end=${iso(now)}`,
    stats_hour_7d: () => {
      const start = weekStart();
      return `/api/v1/events/stats?group_by=hour&start=${start}&end=${weekAfter(start)}`;
    },
  };
  for (const [name, path] of Object.entries(queries)) {
    for (let i = 0; i < 20; i++) await get(path()); // warm-up
    const times = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      const { ms, body } = await get(path());
      times.push(ms);
      rows += body.events?.length ?? body.buckets?.length ?? 0;
    }
    times.sort((a, b) => a - b);
    print({
      bench: "query",
      name,
      events: EVENTS,
      tenant_events: Math.round(perTenant(0)),
      runs: RUNS,
      p50_ms: round(percentile(times, 0.5)),
      p95_ms: round(percentile(times, 0.95)),
      avg_rows: round(rows / RUNS, 1),
    });
  }
  // The naive way, for scale: the same stats as a GROUP BY over the rows (what the rollups spare).
  const naive = {
    stats_type_30d: (t) =>
      admin`select event_type, count(*) from events where tenant_id = ${t} and ts >= ${iso(first)} and ts < ${iso(now)} group by 1`,
    stats_hour_7d: (t) => {
      const start = weekStart();
      return admin`select date_trunc('hour', ts), count(*) from events where tenant_id = ${t}
        and ts >= ${start} and ts < ${weekAfter(start)} group by 1`;
    },
    newest_page_total: (t) => admin`select count(*) from events where tenant_id = ${t}`,
  };
  for (const [name, run] of Object.entries(naive)) {
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await run(big.tenant.id);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    print({
      bench: "query_naive_scan",
      name,
      events: EVENTS,
      runs: 5,
      p50_ms: round(percentile(times, 0.5)),
    });
  }
  agent.destroy();
  await admin.end();
} finally {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await herald.close();
  if (!process.env.KEEP) await dropDatabase(database);
}
