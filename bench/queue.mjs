// npm run bench:queue — Herald's claim engine and event writer against graphile-worker 0.17.3 and Emmett
// 0.42.0, side by side on the same PostgreSQL server, each system in its own process and fresh database.
// Prints one JSON line per result. DATABASE_URL picks the server (default: the local one).
import { dropDatabase, freshDatabase, round, runChild } from "./lib.mjs";

const sizes = (process.env.DRAIN_SIZES ?? "20000,200000").split(",").map(Number);
const print = (line) => console.log(JSON.stringify(line));
const databases = ["herald_bench", "graphile_bench", "emmett_bench"];

try {
  for (const jobs of sizes) {
    const herald = (
      await runChild("bench/herald-drain.mjs", { BENCH_URL: await freshDatabase("herald_bench"), N: jobs })
    )[0];
    const graphile = (
      await runChild("bench/graphile-drain.mjs", {
        BENCH_URL: await freshDatabase("graphile_bench"),
        N: jobs,
      })
    )[0];
    print(herald);
    print(graphile);
    print({ bench: "drain_ratio", jobs, ratio: round(herald.jobs_per_s / graphile.jobs_per_s) });
    print({ bench: "rss", system: "herald", jobs, peak_rss_mb: herald.peak_rss_mb });
  }
  // The full delivery path (claim with the event, in-process handler sink, ack) for the record.
  print(
    (
      await runChild("bench/herald-dispatch.mjs", {
        BENCH_URL: await freshDatabase("herald_bench"),
        N: sizes[0],
      })
    )[0],
  );

  const heraldLatency = (
    await runChild("bench/herald-latency.mjs", { BENCH_URL: await freshDatabase("herald_bench") })
  )[0];
  const graphileLatency = (
    await runChild("bench/graphile-latency.mjs", { BENCH_URL: await freshDatabase("graphile_bench") })
  )[0];
  print(heraldLatency);
  print(graphileLatency);
  print({
    bench: "latency_ratio",
    p50_ratio: round(heraldLatency.p50_ms / graphileLatency.p50_ms),
    p99_ratio: round(heraldLatency.p99_ms / graphileLatency.p99_ms),
  });

  const heraldUrl = await freshDatabase("herald_bench");
  const write0 = (await runChild("bench/herald-write.mjs", { BENCH_URL: heraldUrl, K: 0 }))[0];
  const write2 = (await runChild("bench/herald-write.mjs", { BENCH_URL: heraldUrl, K: 2 }))[0];
  const emmett = (
    await runChild("bench/emmett-write.mjs", { BENCH_URL: await freshDatabase("emmett_bench") })
  )[0];
  print(write0);
  print(write2);
  print(emmett);
  print({ bench: "write_ratio", ratio: round(write0.events_per_s / emmett.events_per_s) });
} finally {
  for (const name of databases) await dropDatabase(name).catch(() => undefined);
}
