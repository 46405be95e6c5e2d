// npm run bench:ingest — SendGrid ingestion end to end against the physical ceiling, on one PostgreSQL server.
// Ceiling: a server-side INSERT … SELECT of N message events of the same shape into the same schema.
// End to end: `herald serve` in its own process; concurrent clients post signed batches of 500 events (10%
// repeats) over loopback; timed until every event is processed. `TOPOLOGY=split` runs `herald worker` beside an
// API-only `herald serve` instead of one process doing both (the default). Door: the same requests to a
// `herald serve` that processes nothing, so the request latency of the door alone shows beside the run's.
// CPU: each process's CPU time (from /proc) over the timed window, per event, beside the CPU per event that
// 0.5 × the ceiling allows on this machine's cores. Storage: bytes on disk per stored event, by table, after
// VACUUM. One JSON line per result.

import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { availableParallelism } from "node:os";
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
/** Bytes on disk of each table of the schema: its partitions, indexes and TOAST included. */
async function tableSizes(sql) {
  // pg_partition_tree lists nothing for a plain table: it stands for itself.
  const rows =
    await sql`select c.relname as name, sum(pg_total_relation_size(coalesce(p.relid, c.oid)))::bigint as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    left join lateral pg_partition_tree(c.oid) p on true
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
    group by c.relname`;
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
}
/** A process's /proc/PID/stat fields after the command name; undefined once it is gone (or not local). */
function statOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  } catch {
    return undefined;
  }
}
const ticksToMs = (ticks) => (ticks * 1000) / 100; // clock ticks, 100 per second on Linux
/** CPU milliseconds (user + system) a process has used so far; 0 once it is gone. */
function cpuMs(pid) {
  const fields = statOf(pid);
  return fields ? ticksToMs(Number(fields[11]) + Number(fields[12])) : 0;
}
/**
 * CPU milliseconds used by one PostgreSQL server: its postmaster (found as the parent of a backend), the
 * children it has reaped (backends that ended, autovacuum workers) and its live children. Undefined when the
 * server is not on this machine.
 */
function postgresCpu(postmaster) {
  const own = statOf(postmaster);
  if (!own) return undefined;
  const children = execFileSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" })
    .trim()
    .split("\n");
  return (
    ticksToMs(Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) +
    children.reduce((sum, pid) => sum + cpuMs(pid), 0)
  );
}
/** A CPU meter over Herald's processes, PostgreSQL and this load generator; `read()` gives ms used since. */
function cpuMeter(processes, postmaster) {
  const start = {
    herald: Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, cpuMs(p.pid)])),
    postgres: postgresCpu(postmaster),
    loadgen: process.cpuUsage(),
  };
  return () => {
    const loadgen = process.cpuUsage(start.loadgen);
    const postgresNow = postgresCpu(postmaster);
    return {
      ...Object.fromEntries(
        Object.entries(processes).map(([name, p]) => [name, cpuMs(p.pid) - start.herald[name]]),
      ),
      ...(start.postgres !== undefined && postgresNow !== undefined
        ? { postgres: postgresNow - start.postgres }
        : {}),
      loadgen: (loadgen.user + loadgen.system) / 1000,
    };
  };
}
const perUnit = (cpu, units, scale) =>
  Object.fromEntries(Object.entries(cpu).map(([name, ms]) => [name, round((ms * scale) / units, 1)]));

const url = await freshDatabase("herald_ingest_bench");
const admin = "bench-admin-token-0123456789";
const env = { ...process.env, DATABASE_URL: url, HERALD_ADMIN_TOKEN: admin, LOG_LEVEL: "warn" };
/** Herald's processes: stopped in `finally`, so a failed run leaves none behind. */
const children = [];
/** Start `herald <command>` and wait until it listens (serve) or has had a moment to start (worker). */
async function startHerald(command, extraEnv = {}) {
  const port = 3900 + Math.floor(Math.random() * 90);
  const child = spawn(process.execPath, ["dist/cli/main.js", command], {
    env: { ...env, PORT: String(port), ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  if (command === "serve") for (let i = 0; i < 200 && !out.includes("API docs"); i++) await sleep(50);
  else await sleep(1000);
  return { child, base: `http://127.0.0.1:${port}` };
}
async function stopHerald(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on("exit", r));
  child.kill("SIGTERM");
  await exited;
}
const peakRssMb = (pid) =>
  Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024);

try {
  const split = process.env.TOPOLOGY === "split";
  // The door alone first: a server that processes nothing (it also migrates the database). The ceiling is
  // measured in the same schema while it idles.
  const door = await startHerald("serve", { HERALD_SERVE_WORKERS: "off" });
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  const [{ pid: backend }] = await sql`select pg_backend_pid() as pid`;
  const postmaster = statOf(backend)?.[1];

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

  const sample = JSON.parse(readFileSync("test/fixtures/sendgrid/basic-batch.json", "utf8"));
  let unique = 0;
  // The suppressions the run creates: one per address, reason and group (Herald's unique key).
  const suppressed = new Set();
  const suppressionOf = (e) =>
    e.event === "bounce" && e.type !== "blocked"
      ? "bounce"
      : ["spamreport", "unsubscribe"].includes(e.event)
        ? e.event
        : e.event === "group_unsubscribe" && e.asm_group_id !== undefined
          ? `group_unsubscribe:${e.asm_group_id}`
          : undefined;
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
    for (const e of events) {
      const reason = suppressionOf(e);
      if (reason) suppressed.add(`${e.email}|${reason}`);
    }
    return Buffer.from(JSON.stringify(events));
  });

  const posted = BATCHES * PER_BATCH;

  // The writes the run below requires, server-side like the ceiling and so a lower bound for Herald's
  // processing (no request, no parsing, no linking, no Node.js, a smaller log payload), per event posted:
  // for each unique event its dedupe key, its message event and its `message.*` log event, and the run's
  // suppressions (one per address, reason and group) — in the same proportions to the events posted.
  const requiredWrites = (sql, from, count) =>
    sql`with b as (
        select ${tenantForCeiling}::uuid as tenant_id, i, 'req-' || i as key, 'MSG' || (i % 1000) || '.filter' as pmid,
          now() - (i % 3600) * interval '1 second' as at, 'user' || (i % 5000) || '@example.com' as recipient,
          jsonb_build_object('email', 'user' || i || '@example.com', 'timestamp', 1763800000 + i, 'event', 'delivered',
            'sg_event_id', 'req-' || i, 'sg_message_id', 'MSG' || (i % 1000) || '.filter-' || i,
            'response', '250 2.0.0 OK', 'ip', '149.72.10.11') as payload,
          -- Ids in time order as Herald's are, made cheaply: Herald sends them (the ceiling's default costs
          -- ~4.6 µs per row, more than the rest of some of these inserts).
          lpad(to_hex(i * 4), 32, '0')::uuid as id, lpad(to_hex(i * 4 + 1), 32, '0')::uuid as log_id,
          lpad(to_hex(i * 4 + 2), 32, '0')::uuid as cause_id
        from generate_series(${from}::int, ${from + Math.round((count * unique) / posted) - 1}::int) i
      ), keyed as (
        insert into message_event_keys (tenant_id, provider, dedupe_key, message_event_id, event_at)
        select tenant_id, 'sendgrid', key, id, at from b
        returning message_event_id, dedupe_key
      ), stored as (
        insert into message_events (id, tenant_id, provider, provider_event_id, provider_message_id, dedupe_key, type,
          event_at, recipient, ip, reason, payload, log_event_id)
        select k.message_event_id, tenant_id, 'sendgrid', key, pmid, key, 'delivered', at, recipient, '149.72.10.11',
          '250 OK', payload, log_id
        from b join keyed k on k.dedupe_key = b.key
        returning id, tenant_id, log_event_id, type, event_at, recipient, provider_message_id
      ), logged as (
        insert into events (id, tenant_id, event_type, source, payload, ts)
        select log_event_id, tenant_id, 'message.' || type, 'webhook', jsonb_build_object('message_event_id', id,
          'provider', 'sendgrid', 'provider_message_id', provider_message_id, 'recipient', recipient), event_at
        from stored
      )
      insert into communication_suppressions (tenant_id, channel, address, reason, source_event_id, source_event_at)
      select tenant_id, 'email', 'req-' || i || '@example.com', 'bounce', cause_id, at from b
      where i < ${from + Math.round((count * suppressed.size) / posted)}`;
  // On one connection, like the ceiling; then split over as many connections as there are cores: the most
  // this machine writes that way.
  const cores = availableParallelism();
  for (const connections of [1, cores]) {
    const sessions = Array.from({ length: connections }, () => postgres(url, { max: 1, onnotice: () => {} }));
    const runs = [];
    for (let run = 0; run < 3; run++) {
      const from = (3 + (connections > 1 ? 3 : 0) + run) * N + 1;
      const share = Math.ceil(N / connections);
      const t = performance.now();
      await Promise.all(
        sessions.map((session, c) =>
          requiredWrites(session, from + c * share, Math.min(share, N - c * share)),
        ),
      );
      runs.push(Math.round(N / ((performance.now() - t) / 1000)));
    }
    await Promise.all(sessions.map((session) => session.end()));
    runs.sort((x, y) => x - y);
    print({
      bench: "required_writes",
      events: N,
      unique_events: Math.round((N * unique) / posted),
      suppressions: Math.round((N * suppressed.size) / posted),
      connections,
      runs,
      events_per_s: runs[1],
      ratio: round(runs[1] / ceiling),
    });
  }

  // A tenant with a signed source, through the API.
  const tenant = await (
    await fetch(`${door.base}/api/v1/admin/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench" }),
    })
  ).json();
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const source = await (
    await fetch(`${door.base}/api/v1/sources`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({
        provider: "sendgrid",
        verification: { public_key: publicKey.export({ format: "der", type: "spki" }).toString("base64") },
      }),
    })
  ).json();

  /** Post every body to `base` from CLIENTS concurrent clients; each request's milliseconds, sorted. */
  async function postAll(base) {
    const latencies = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++];
          const timestamp = String(Math.floor(Date.now() / 1000));
          const signature = sign(
            "sha256",
            Buffer.concat([Buffer.from(timestamp), body]),
            privateKey,
          ).toString("base64");
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
    return latencies.sort((a, b) => a - b);
  }

  const doorCpu = cpuMeter({ server: door.child }, postmaster);
  const d0 = performance.now();
  const doorLatencies = await postAll(door.base);
  const doorSeconds = (performance.now() - d0) / 1000;
  print({
    bench: "door",
    requests: BATCHES,
    requests_per_s: Math.round(BATCHES / doorSeconds),
    http_p99_ms: round(percentile(doorLatencies, 0.99)),
    http_p50_ms: round(percentile(doorLatencies, 0.5)),
    cpu_ms_per_request: perUnit(doorCpu(), BATCHES, 1),
  });
  await stopHerald(door.child);
  // What the door kept is not for the run below.
  await sql`delete from webhook_deliveries where tenant_id = ${tenant.tenant.id}`;
  // Not autovacuum's work inside the timed run; FULL, so the run's deliveries take new pages (the storage line
  // below measures what the run adds).
  await sql`vacuum full webhook_deliveries`;
  await sql`vacuum`; // and every table's free-space and visibility maps made, so they do not count as the run's
  const sizesBefore = await tableSizes(sql);

  // End to end: a server that also processes (or, split, one beside a worker).
  const server = await startHerald("serve", { HERALD_SERVE_WORKERS: split ? "off" : "on" });
  const worker = split ? (await startHerald("worker")).child : undefined;
  const runCpu = cpuMeter(worker ? { server: server.child, worker } : { server: server.child }, postmaster);
  const t0 = performance.now();
  const latencies = await postAll(server.base);
  // Done when no delivery is left to process (a cheap look at the queue index, so the poll itself does not
  // load the server); then every unique event must be stored.
  for (;;) {
    const [{ n }] = await sql`select count(*)::int as n from webhook_deliveries
      where tenant_id = ${tenant.tenant.id} and status in ('pending', 'processing')`;
    if (n === 0) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = runCpu();
  const [{ stored }] =
    await sql`select count(*)::int as stored from message_events where tenant_id = ${tenant.tenant.id}`;
  if (stored !== unique) throw new Error(`expected ${unique} stored events, found ${stored}`);
  const lags = (
    await sql`select extract(epoch from (processed_at - received_at)) * 1000 as ms from webhook_deliveries
    where tenant_id = ${tenant.tenant.id} and processed_at is not null order by 1`
  ).map((r) => Number(r.ms));
  const events = BATCHES * PER_BATCH;
  const eventsPerS = Math.round(events / seconds);
  print({
    bench: "ingest",
    events,
    unique_events: unique,
    clients: CLIENTS,
    events_per_s: eventsPerS,
    http_p99_ms: round(percentile(latencies, 0.99)),
    http_p50_ms: round(percentile(latencies, 0.5)),
    lag_p50_ms: round(percentile(lags, 0.5)),
    lag_p99_ms: round(percentile(lags, 0.99)),
    rss_mb: peakRssMb(server.child.pid),
    topology: split ? "split" : "single",
    ...(worker ? { worker_rss_mb: peakRssMb(worker.pid) } : {}),
  });
  print({ bench: "ingest_ratio", ratio: round(eventsPerS / ceiling) });
  // The run is CPU-bound: what it spent per event, and what 0.5 × the ceiling leaves on these cores.
  const spent = perUnit(cpu, events, 1000);
  print({
    bench: "ingest_cpu",
    cores,
    cpu_busy: round(Object.values(cpu).reduce((a, b) => a + b, 0) / (seconds * 1000 * cores)),
    cpu_us_per_event: {
      ...spent,
      total: round(
        Object.values(spent).reduce((a, b) => a + b, 0),
        1,
      ),
    },
    cpu_us_per_event_at_target: Math.round((cores * 1e6) / (0.5 * ceiling)),
  });
  // Bytes on disk per unique event the run stored, after VACUUM: every table (all its partitions, indexes and
  // TOAST) the run grew, from their sizes before it. The number later storage work is measured against.
  await sql`vacuum`;
  const sizesAfter = await tableSizes(sql);
  const byTable = Object.fromEntries(
    Object.entries(sizesAfter)
      .map(([table, bytes]) => [table, Math.round((bytes - (sizesBefore[table] ?? 0)) / unique)])
      .filter(([, bytes]) => bytes > 0)
      .sort((a, b) => b[1] - a[1]),
  );
  print({
    bench: "storage",
    unique_events: unique,
    bytes_per_event: Object.values(byTable).reduce((a, b) => a + b, 0),
    by_table: byTable,
  });
  await sql.end();
} finally {
  await Promise.all(children.map(stopHerald));
  await dropDatabase("herald_ingest_bench").catch(() => undefined);
}
