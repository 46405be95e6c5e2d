// npm run bench:ingest — SendGrid ingestion end to end against the physical ceiling, on one PostgreSQL server.
// Ceiling: a server-side INSERT … SELECT of N message events of the same shape into the same schema.
// End to end: `herald serve` in its own process; concurrent clients post signed batches of 500 events (10%
// repeats) over loopback; timed until every event is processed. `TOPOLOGY=split` runs `herald worker` beside an
// API-only `herald serve` instead of one process doing both (the default). One JSON line per result.

import { spawn } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import postgres from "postgres";
import { dropDatabase, freshDatabase, percentile, round } from "./lib.mjs";

const BATCHES = Number(process.env.BATCHES ?? 120);
const CLIENTS = Number(process.env.CLIENTS ?? 8);
const PER_BATCH = 500;
const print = (line) => console.log(JSON.stringify(line));
// The load generator shares the machine's two cores with Herald and PostgreSQL: plain node:http with
// keep-alive (undici's fetch costs several times more CPU per request).
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
function post(url, body, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-length": body.length } },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const url = await freshDatabase("herald_ingest_bench");
/** Herald's processes: stopped in `finally`, so a failed run leaves none behind. */
const children = [];
try {
  // Start Herald (it migrates), then measure the ceiling in the same schema while it idles.
  const port = 3900 + Math.floor(Math.random() * 90);
  const admin = "bench-admin-token-0123456789";
  const split = process.env.TOPOLOGY === "split";
  const env = {
    ...process.env,
    DATABASE_URL: url,
    PORT: String(port),
    HERALD_ADMIN_TOKEN: admin,
    LOG_LEVEL: "warn",
  };
  const server = spawn(process.execPath, ["dist/cli/main.js", "serve"], {
    env: { ...env, HERALD_SERVE_WORKERS: split ? "off" : "on" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(server);
  // The worker starts once the server has migrated (below), so the two do not race for the first migration.
  let worker;
  let out = "";
  server.stdout.on("data", (d) => {
    out += d;
  });
  for (let i = 0; i < 200 && !out.includes("API docs"); i++) await sleep(50);
  const base = `http://127.0.0.1:${port}`;
  if (split) {
    worker = spawn(process.execPath, ["dist/cli/main.js", "worker"], {
      env,
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(worker);
    await sleep(1000);
  }
  const sql = postgres(url, { max: 2, onnotice: () => {} });

  const [{ id: tenantForCeiling }] = await sql`insert into tenants (name) values ('ceiling') returning id`;
  // One statement inserting N rows is quick and so noisy here: the median of three runs.
  const N = 50_000;
  const ceilings = [];
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    await sql`insert into message_events (tenant_id, provider, provider_event_id, provider_message_id, dedupe_key, type,
        event_at, recipient, url, ip, user_agent, reason, payload)
      select ${tenantForCeiling}, 'sendgrid', 'ev-' || i, 'MSG' || (i % 1000) || '.filter', 'ev-' || i, 'delivered',
        now(), 'user' || (i % 1000) || '@example.com', null, '149.72.10.11', null, '250 OK',
        jsonb_build_object('email', 'user' || i || '@example.com', 'timestamp', 1763800000 + i, 'event', 'delivered',
          'sg_event_id', 'ev-' || i, 'sg_message_id', 'MSG' || (i % 1000) || '.filter-' || i, 'response', '250 2.0.0 OK', 'ip', '149.72.10.11')
      from generate_series(${run * N + 1}::int, ${(run + 1) * N}::int) i`;
    ceilings.push(Math.round(N / ((performance.now() - t) / 1000)));
  }
  const ceiling = ceilings.sort((x, y) => x - y)[1];
  print({ bench: "ceiling", events: N, runs: ceilings, events_per_s: ceiling });

  // A tenant with a signed source, through the API.
  const tenant = await (
    await fetch(`${base}/api/v1/admin/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench" }),
    })
  ).json();
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const source = await (
    await fetch(`${base}/api/v1/sources`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({
        provider: "sendgrid",
        verification: { public_key: publicKey.export({ format: "der", type: "spki" }).toString("base64") },
      }),
    })
  ).json();

  const sample = JSON.parse(readFileSync("test/fixtures/sendgrid/basic-batch.json", "utf8"));
  let unique = 0;
  // Events of the last hour, as SendGrid posts them (seconds to minutes after they happen), so their month's
  // partitions exist as they do in production: a fixed old timestamp made every run create that month's first.
  const now = Math.floor(Date.now() / 1000);
  const bodies = Array.from({ length: BATCHES }, (_, b) => {
    const events = Array.from({ length: PER_BATCH }, (_, j) => {
      // 10% of each batch repeats events of the previous batch (from its fresh part, so they are real repeats).
      const repeats = PER_BATCH / 10;
      const n = j < repeats && b > 0 ? (b - 1) * PER_BATCH + repeats + j : b * PER_BATCH + j;
      const e = sample[n % sample.length];
      return {
        ...e,
        email: `user${n % 5000}@example.com`,
        sg_event_id: `b-${n}`,
        timestamp: now - (n % 3600),
        sg_message_id: `M${n % 5000}.f-${n}`,
      };
    });
    unique += b === 0 ? PER_BATCH : PER_BATCH - PER_BATCH / 10;
    return Buffer.from(JSON.stringify(events));
  });

  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const timestamp = String(Math.floor(Date.now() / 1000));
        const signature = sign("sha256", Buffer.concat([Buffer.from(timestamp), body]), privateKey).toString(
          "base64",
        );
        const s = performance.now();
        const status = await post(`${base}${source.url}`, body, {
          "content-type": "application/json",
          "x-twilio-email-event-webhook-signature": signature,
          "x-twilio-email-event-webhook-timestamp": timestamp,
        });
        latencies.push(performance.now() - s);
        if (status !== 200) throw new Error(`HTTP ${status}`);
      }
    }),
  );
  // Done when no delivery is left to process (a cheap look at the queue index, so the poll itself does not
  // load the server); then every unique event must be stored.
  for (;;) {
    const [{ n }] = await sql`select count(*)::int as n from webhook_deliveries
      where tenant_id = ${tenant.tenant.id} and status in ('pending', 'processing')`;
    if (n === 0) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  const [{ stored }] =
    await sql`select count(*)::int as stored from message_events where tenant_id = ${tenant.tenant.id}`;
  if (stored !== unique) throw new Error(`expected ${unique} stored events, found ${stored}`);
  const peakMb = (pid) =>
    Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024);
  const workerRssMb = worker ? peakMb(worker.pid) : undefined;
  const rssMb = Math.round(
    Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, "utf8"))[1]) / 1024,
  );
  const lags = (
    await sql`select extract(epoch from (processed_at - received_at)) * 1000 as ms from webhook_deliveries
    where tenant_id = ${tenant.tenant.id} and processed_at is not null order by 1`
  ).map((r) => Number(r.ms));
  latencies.sort((a, b) => a - b);
  const eventsPerS = Math.round((BATCHES * PER_BATCH) / seconds);
  print({
    bench: "ingest",
    events: BATCHES * PER_BATCH,
    unique_events: unique,
    clients: CLIENTS,
    events_per_s: eventsPerS,
    http_p99_ms: round(percentile(latencies, 0.99)),
    http_p50_ms: round(percentile(latencies, 0.5)),
    lag_p50_ms: round(percentile(lags, 0.5)),
    lag_p99_ms: round(percentile(lags, 0.99)),
    rss_mb: rssMb,
    topology: split ? "split" : "single",
    ...(workerRssMb ? { worker_rss_mb: workerRssMb } : {}),
  });
  print({ bench: "ingest_ratio", ratio: round(eventsPerS / ceiling) });
  await sql.end();
} finally {
  for (const child of children.filter((c) => c.exitCode === null && c.signalCode === null)) {
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await dropDatabase("herald_ingest_bench").catch(() => undefined);
}
