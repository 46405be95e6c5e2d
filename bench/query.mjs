// npm run bench:query — the event log's read side at scale, over HTTP, on one PostgreSQL server.
// Seeds EVENTS events (default 10,000,000; `--events N` or EVENTS=N for quick runs) over 100 tenants, one of
// them holding 30 %, spread over the last 30 days, through Herald's bulk path (`writeEvents`, batches of
// 2,000, two writers), with `message.*` and a dozen other types, contacts (≤ 200 events each) and sessions.
// Then the rollups are brought up to date and `herald serve` answers RUNS requests of each query for the big
// tenant, one at a time: p50 and p95 per query, first as the server starts (`query_cold`), then after
// WARMUP (default 300) more requests of each (`query`, the lines the targets are for). Beside each stats query, the same numbers computed the naive
// way (a GROUP BY over the rows, a few runs) for comparison. One JSON line per result.

import http from "node:http";
import postgres from "postgres";
import { dropDatabase, percentile, random, round, seedEventLog, serveHerald } from "./lib.mjs";

const argEvents = process.argv.indexOf("--events");
const EVENTS = Number(argEvents > 0 ? process.argv[argEvents + 1] : (process.env.EVENTS ?? 10_000_000));
const RUNS = Number(process.env.RUNS ?? 200);
const WARMUP = Number(process.env.WARMUP ?? 300);
const TENANTS = 100;
const BIG_SHARE = 0.3;
const DAYS = 30;
const database = "herald_query_bench";
const print = (line) => console.log(JSON.stringify(line));

const seeded = await seedEventLog({
  database,
  events: EVENTS,
  tenantCount: TENANTS,
  bigShare: BIG_SHARE,
  days: DAYS,
  label: "bench:query",
});
const { url, herald, big, first, now, perTenant, contactsOf, seedS, rollupS } = seeded;
let server;
try {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
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
  server = await serveHerald(url, { HERALD_SERVE_WORKERS: "off" });
  const port = new URL(server.url).port;
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
  /** RUNS requests of each query, one at a time, after 20 of it untimed: a line each. */
  const pass = async (bench) => {
    for (const [name, path] of Object.entries(queries)) {
      for (let i = 0; i < 20; i++) await get(path());
      const times = [];
      let rows = 0;
      for (let i = 0; i < RUNS; i++) {
        const { ms, body } = await get(path());
        times.push(ms);
        rows += body.events?.length ?? body.buckets?.length ?? 0;
      }
      times.sort((a, b) => a - b);
      print({
        bench,
        name,
        events: EVENTS,
        tenant_events: Math.round(perTenant(0)),
        runs: RUNS,
        p50_ms: round(percentile(times, 0.5)),
        p95_ms: round(percentile(times, 0.95)),
        avg_rows: round(rows / RUNS, 1),
      });
    }
  };
  // Cold: the server just started (its code not yet optimized by V8, its pool's connections new), as the
  // first requests after a deploy meet it. Then WARMUP more requests of each query, and the same again warm,
  // as a server in service answers: the lines held against the targets.
  await pass("query_cold");
  for (const path of Object.values(queries)) for (let i = 0; i < WARMUP; i++) await get(path());
  await pass("query");
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
  await server?.stop();
  await herald.close();
  if (!process.env.KEEP) await dropDatabase(database);
}
