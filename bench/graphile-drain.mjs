// graphile-worker 0.17.3 draining N no-op jobs, tuned as in its own perf test (local queue 500, batched
// completion with no delay, concurrency 24), as ../shared/peers/graphile-drain.mjs measures it.
import { run, runMigrations } from "graphile-worker";
import pg from "pg";
import { peakRss } from "./lib.mjs";

const N = Number(process.env.N ?? 20000);
const C = Number(process.env.C ?? 24);
const pool = new pg.Pool({ connectionString: process.env.BENCH_URL, max: C + 2 });
pool.on("error", () => {});
await pool.query("drop schema if exists graphile_worker cascade");
await runMigrations({ pgPool: pool });
await pool.query(
  `select graphile_worker.add_jobs(array_agg(row('noop', json_build_object('id', i), null, null, null, null, null, null)::graphile_worker.job_spec)) from generate_series(1, $1) i`,
  [N],
);
await pool.query("vacuum analyze graphile_worker._private_jobs");
let done = 0;
let finish;
const finished = new Promise((r) => {
  finish = r;
});
const rss = peakRss();
const t0 = performance.now();
const runner = await run({
  pgPool: pool,
  preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  concurrency: C,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: undefined,
  taskList: {
    noop: async () => {
      if (++done === N) finish();
    },
  },
});
await finished;
const ms = performance.now() - t0;
await runner.stop();
await pool.end();
console.log(
  JSON.stringify({
    bench: "drain",
    system: "graphile-worker",
    jobs: N,
    jobs_per_s: Math.round((N / ms) * 1000),
    peak_rss_mb: rss(),
  }),
);
