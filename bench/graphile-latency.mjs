// graphile-worker 0.17.3 idle latency: 1,000 sequential addJob → task start after 100 warm-ups, as its own
// latency test (and ../shared/peers/graphile-latency.mjs) measures it.
import { makeWorkerUtils, run, runMigrations } from "graphile-worker";
import pg from "pg";
import { percentile, round } from "./lib.mjs";

const N = Number(process.env.N ?? 1000);
const pool = new pg.Pool({ connectionString: process.env.BENCH_URL, max: 10 });
pool.on("error", () => {});
await pool.query("drop schema if exists graphile_worker cascade");
await runMigrations({ pgPool: pool });
let resolveStart;
const runner = await run({
  pgPool: pool,
  concurrency: 1,
  noHandleSignals: true,
  pollInterval: 2000,
  taskList: {
    latency: async () => {
      resolveStart(performance.now());
    },
  },
});
const utils = await makeWorkerUtils({ pgPool: pool });
const samples = [];
for (let i = 0; i < N + 100; i++) {
  const started = new Promise((r) => {
    resolveStart = r;
  });
  const t0 = performance.now();
  await utils.addJob("latency", { i });
  const t1 = await started;
  if (i >= 100) samples.push(t1 - t0);
}
samples.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    bench: "latency",
    system: "graphile-worker",
    samples: N,
    p50_ms: round(percentile(samples, 0.5)),
    p99_ms: round(percentile(samples, 0.99)),
    max_ms: round(samples.at(-1)),
  }),
);
await utils.release();
await runner.stop();
await pool.end();
