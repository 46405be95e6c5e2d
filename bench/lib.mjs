// Shared bits of the benchmark scripts: a fresh database per run, child processes, percentiles.
import { spawn } from "node:child_process";
import postgres from "postgres";

export const serverUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export function databaseUrl(name) {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drop and create database `name` on the server; returns its URL. */
export async function freshDatabase(name) {
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  return databaseUrl(name);
}

export async function dropDatabase(name) {
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
}

/** Run a bench script as its own process (own RSS, own event loop); resolves with its JSON lines. */
export function runChild(script, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", script], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}:\n${out}`));
      resolve(
        out
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l)),
      );
    });
  });
}

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export const round = (x, digits = 2) => Number(x.toFixed(digits));

/** Track this process's peak RSS while a benchmark runs. */
export function peakRss() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  return () => {
    clearInterval(timer);
    return Math.round(Math.max(peak, process.memoryUsage.rss()) / 1024 / 1024);
  };
}

/**
 * Start `worker`, wait until `jobs` rows were completed, stop it; the elapsed milliseconds and the peak RSS.
 * The pool is warmed first, as graphile-worker's is by the migrations and the enqueue of its own run.
 */
export async function timeDrain(worker, jobs, warm) {
  let done = 0;
  let finish;
  const finished = new Promise((r) => {
    finish = r;
  });
  worker.on("job:completed", (rows) => {
    done += rows.length;
    if (done >= jobs) finish();
  });
  worker.on("worker:error", (e) => console.error(e));
  await warm();
  const rss = peakRss();
  const t0 = performance.now();
  await worker.start();
  await finished;
  const ms = performance.now() - t0;
  await worker.stop();
  return { ms, peakRssMb: rss() };
}

/** A seeded pseudo-random sequence, so two runs seed the same data. */
export function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

/** One line of progress on stderr, rewritten in place. */
export const progress = (text) => process.stderr.write(`\r${text}`.padEnd(70));

const messageEventTypes = [
  "sent",
  "delivered",
  "open",
  "click",
  "bounce",
  "deferred",
  "dropped",
  "spam_report",
].map((t) => `message.${t}`);
const otherEventTypes = [
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
const eventSources = ["system", "webhook", "manual", "cron", "workflow"];

/**
 * The event log of bench:query and bench:console, in a fresh database `database` (needs `npm run build`):
 * `events` events over `tenantCount` tenants, the first holding `bigShare` of them, spread over the last `days`
 * days, through Herald's bulk path (`writeEvents`, batches of 2,000, two writers), with `message.*` and a dozen
 * other types, contacts (~100 events each, ≤ 200) and sessions (~20); then `vacuum analyze` and the rollups
 * brought up to date. Returns the open database (`herald`, to close), its URL, the tenants (`big` first), the
 * time span and the shape helpers, and the seconds it took.
 */
export async function seedEventLog({
  database,
  events,
  tenantCount = 100,
  bigShare = 0.3,
  days = 30,
  label,
}) {
  const BATCH = 2000;
  const WRITERS = 2;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const { openDatabase } = await import("../dist/db/client.js");
  const { migrate } = await import("../dist/db/migrate.js");
  const { preparePartitions } = await import("../dist/db/partitions.js");
  const { createTenant } = await import("../dist/tenancy/tenants.js");
  const { writeEvents } = await import("../dist/events/write.js");
  const rollups = await import("../dist/events/rollups.js").catch(() => undefined);

  const url = await freshDatabase(database);
  const herald = await openDatabase({ url, poolSize: WRITERS + 2 });
  await migrate(herald.db);
  const now = Date.now();
  const first = now - days * 86_400_000;
  await preparePartitions(herald.db, ["events"], [new Date(first), new Date(now)]);
  const tenants = [];
  for (let i = 0; i < tenantCount; i++) tenants.push(await createTenant(herald.db, `tenant-${i}`));
  const perTenant = (i) => (i === 0 ? events * bigShare : (events * (1 - bigShare)) / (tenantCount - 1));
  // Contacts of ~100 events each (at most 200), sessions of ~20.
  const contactsOf = (i) => Math.max(1, Math.round(perTenant(i) / 100));
  const sessionsOf = (i) => Math.max(1, Math.round(perTenant(i) / 20));

  // Seeding: the log in time order (jittered), each batch spread over the tenants by their share.
  const next = random(42);
  const pickTenant = () => (next() < bigShare ? 0 : 1 + Math.floor(next() * (tenantCount - 1)));
  let written = 0;
  const started = performance.now();
  const batches = Math.ceil(events / BATCH);
  let issued = 0;
  const writer = async () => {
    while (issued < batches) {
      const b = issued++;
      const size = Math.min(BATCH, events - b * BATCH);
      const rows = Array.from({ length: size }, (_, j) => {
        const t = pickTenant();
        const at = first + ((b * BATCH + j) / events) * (now - first - 60_000) + Math.floor(next() * 1000);
        const message = next() < 0.6;
        return {
          tenantId: tenants[t].tenant.id,
          eventType: message
            ? messageEventTypes[Math.floor(next() * messageEventTypes.length)]
            : otherEventTypes[Math.floor(next() * otherEventTypes.length)],
          source: message ? "webhook" : eventSources[Math.floor(next() * eventSources.length)],
          timestamp: new Date(at),
          contactId: next() < 0.9 ? `c${Math.floor(next() * contactsOf(t))}` : null,
          sessionId: next() < 0.5 ? `s${Math.floor(next() * sessionsOf(t))}` : null,
          correlationId: next() < 0.2 ? `corr-${Math.floor(next() * 1e6)}` : null,
          payload: { n: b * BATCH + j, note: `seeded by ${label}` },
        };
      });
      await writeEvents(herald.db, rows);
      written += size;
      if (b % 25 === 0) {
        const s = (performance.now() - started) / 1000;
        progress(
          `seeding ${written.toLocaleString()} / ${events.toLocaleString()} (${Math.round(written / s)} events/s)`,
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
    // a rebuild can stop short while another transaction is open. Project until no event lies past the
    // checkpoint — in (transaction, position) order: seeded on several connections, the last position may
    // belong to an older transaction, behind a checkpoint whose own position is lower.
    const end = async () => {
      const [row] = await admin`select not exists (select 1 from events e, event_rollup_checkpoint c
        where (e.transaction_id, e.position) > (c.transaction_id, c.position)) as done`;
      return row.done;
    };
    while (!(await end())) {
      const read = await rollups.projectRollups(herald.db, 10_000);
      if (read === 0) await sleep(200);
    }
    rollupS = (performance.now() - t) / 1000;
    await admin.unsafe("vacuum analyze");
  }
  // The seed's gigabytes written back now rather than while reads are timed (a checkpoint would otherwise
  // flush them under the first queries).
  progress("checkpoint");
  await admin.unsafe("checkpoint");
  await admin.end();
  process.stderr.write("\n");
  return {
    url,
    herald,
    tenants,
    big: tenants[0],
    first,
    now,
    perTenant,
    contactsOf,
    sessionsOf,
    seedS,
    rollupS,
  };
}

/**
 * `herald serve` (the built CLI) on database `url` in its own process, as deployed, on a free port; resolves
 * once it listens. `stop()` ends it.
 */
export async function serveHerald(url, env = {}) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const child = spawn(process.execPath, ["dist/cli/main.js", "serve"], {
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: "warn", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  const listening = () => /Herald listening on (http:\/\/\S+)/.exec(out);
  for (let i = 0; i < 600 && !listening(); i++) {
    if (child.exitCode !== null) throw new Error(`herald serve exited (${child.exitCode}):\n${out}`);
    await sleep(50);
  }
  const match = listening();
  if (!match) throw new Error(`herald serve did not start:\n${out}`);
  return {
    url: match[1],
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
