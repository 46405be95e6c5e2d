// npm run bench:scheduler — scheduled actions run by `herald worker` processes against PostgreSQL.
//
// ACTIONS (default 100,000) one-off `emit_event` actions, due evenly over WINDOW_S seconds (default 60)
// starting a few seconds after they are stored, are inserted server-side in one statement (not timed), then
// run by WORKERS (default 2) `herald worker` processes started beforehand on a fresh database. Due-to-run of
// an action: its event's time (`events.ts`, taken by the handler as it starts writing, inside the slot's
// transaction) minus its `run_at`; p50 and p99 over all of them. actions_per_s: actions over the span from the
// first `run_at` to the last start (≈ ACTIONS / WINDOW_S while the workers keep up). One JSON line.

import { spawn } from "node:child_process";
import postgres from "postgres";
import { dropDatabase, freshDatabase, round } from "./lib.mjs";

const ACTIONS = Number(process.env.ACTIONS ?? 100_000);
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const WORKERS = Number(process.env.WORKERS ?? 2);
const LEAD_S = Number(process.env.LEAD_S ?? 5);
const database = "herald_scheduler_bench";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const url = await freshDatabase(database);
const sql = postgres(url, { max: 2, onnotice: () => {} });

/** A `herald` command in its own process; resolves once its output matches `ready` (or it exits). */
function herald(args, ready) {
  const child = spawn(process.execPath, ["dist/cli/main.js", ...args], {
    env: { ...process.env, DATABASE_URL: url, HERALD_METRICS_PORT: "off", LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const started = new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      if (ready?.test(out)) resolve(child);
    });
    child.on("exit", (code) =>
      code === 0 ? resolve(child) : reject(new Error(`herald ${args[0]}: ${code}\n${out}`)),
    );
  });
  return { child, started };
}

const workers = [];
try {
  await herald(["migrate"]).started;
  const [tenant] = await sql`insert into tenants (name) values ('scheduler-bench') returning id`;
  for (let i = 0; i < WORKERS; i++) workers.push(herald(["worker"], /workers running/));
  await Promise.all(workers.map((w) => w.started));

  // Due from LEAD_S seconds after the insert begins, evenly over the window.
  await sql`insert into scheduled_actions (action_id, tenant_id, action_type, payload, run_at, next_attempt_at, status)
    select herald_uuidv7(), ${tenant.id}, 'emit_event',
      jsonb_build_object('event_type', 'bench.reminder', 'source', 'cron', 'payload', jsonb_build_object('i', i)),
      t0 + (i * ${(WINDOW_S * 1000.0) / ACTIONS}::float8) * interval '1 millisecond',
      t0 + (i * ${(WINDOW_S * 1000.0) / ACTIONS}::float8) * interval '1 millisecond', 'pending'
    from generate_series(0, ${ACTIONS - 1}) i, (select now() + ${LEAD_S} * interval '1 second' as t0) s`;

  const deadline = Date.now() + (LEAD_S + WINDOW_S + 300) * 1000;
  for (;;) {
    const [{ left }] = await sql`select count(*)::int as left from scheduled_actions
      where status in ('pending', 'processing')`;
    if (left === 0) break;
    if (Date.now() > deadline) throw new Error(`${left} actions not run after five minutes past the window`);
    await sleep(1000);
  }
  const [r] = await sql`with runs as (
      select extract(epoch from e.ts - a.run_at) * 1000 as ms, a.run_at, e.ts
      from scheduled_actions a join events e
        on e.tenant_id = a.tenant_id and e.event_key = 'scheduled:' || a.action_id
    )
    select count(*)::int as actions,
      percentile_cont(0.5) within group (order by ms) as p50,
      percentile_cont(0.99) within group (order by ms) as p99,
      extract(epoch from max(ts) - min(run_at)) as span_s
    from runs`;
  const [{ dead }] = await sql`select count(*)::int as dead from scheduled_actions where status = 'dead'`;
  if (r.actions !== ACTIONS || dead > 0)
    throw new Error(`${r.actions} of ${ACTIONS} actions ran, ${dead} dead`);
  console.log(
    JSON.stringify({
      bench: "scheduler",
      actions: ACTIONS,
      due_to_run_p50_ms: round(Number(r.p50), 1),
      due_to_run_p99_ms: round(Number(r.p99), 1),
      actions_per_s: Math.round(ACTIONS / Number(r.span_s)),
      workers: WORKERS,
      window_s: WINDOW_S,
    }),
  );
} finally {
  for (const w of workers) w.child.kill("SIGTERM");
  await Promise.all(
    workers.map((w) => new Promise((r) => (w.child.exitCode === null ? w.child.on("exit", r) : r()))),
  );
  await sql.end();
  await dropDatabase(database);
}
