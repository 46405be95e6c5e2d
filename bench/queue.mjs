// npm run bench:queue — Herald's claim engine and event writer against graphile-worker 0.17.3 and Emmett
// 0.42.0, side by side on the same PostgreSQL server, each system in its own process and fresh database.
// The systems take turns (A B A B …) and each result is the median of its rounds, so drift on a shared
// machine hits both alike. Prints one JSON line per result. DATABASE_URL picks the server.
import { dropDatabase, freshDatabase, round, runChild } from "./lib.mjs";

const sizes = (process.env.DRAIN_SIZES ?? "20000,200000").split(",").map(Number);
const rounds = Number(process.env.ROUNDS ?? 3);
// PARTS=write (or drain,latency,write): only those parts of the comparison. @defaultValue all three
const parts = new Set((process.env.PARTS ?? "drain,latency,write").split(","));
const print = (line) => console.log(JSON.stringify(line));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Run `script` once in a fresh database; its first JSON line. */
const once = async (script, database, env = {}) =>
  (await runChild(script, { BENCH_URL: await freshDatabase(database), ...env }))[0];

/** Alternate two systems for `n` rounds; returns each one's result lines. */
async function alternate(n, a, b) {
  const results = { a: [], b: [] };
  for (let i = 0; i < n; i++) {
    results.a.push(await a());
    results.b.push(await b());
  }
  return results;
}

const summarize = (lines, fields) => ({
  ...lines[0],
  ...Object.fromEntries(fields.map((f) => [f, median(lines.map((l) => l[f]))])),
  rounds: lines.length,
});

try {
  for (const jobs of parts.has("drain") ? sizes : []) {
    const n = jobs >= 100_000 ? 1 : rounds;
    const { a, b } = await alternate(
      n,
      () => once("bench/herald-drain.mjs", "herald_bench", { N: jobs }),
      () => once("bench/graphile-drain.mjs", "graphile_bench", { N: jobs }),
    );
    const herald = summarize(a, ["jobs_per_s", "peak_rss_mb"]);
    const graphile = summarize(b, ["jobs_per_s", "peak_rss_mb"]);
    print(herald);
    print(graphile);
    print({ bench: "drain_ratio", jobs, ratio: round(herald.jobs_per_s / graphile.jobs_per_s) });
    print({ bench: "rss", system: "herald", jobs, peak_rss_mb: herald.peak_rss_mb });
  }
  // The full delivery path (claim with the event, in-process handler sink, ack), for the record.
  if (parts.has("drain")) print(await once("bench/herald-dispatch.mjs", "herald_bench", { N: sizes[0] }));

  if (parts.has("latency")) await compareLatency();
  if (parts.has("write")) await compareWrites();
} finally {
  for (const name of ["herald_bench", "graphile_bench", "emmett_bench"])
    await dropDatabase(name).catch(() => undefined);
}

async function compareLatency() {
  const latency = await alternate(
    rounds,
    () => once("bench/herald-latency.mjs", "herald_bench"),
    () => once("bench/graphile-latency.mjs", "graphile_bench"),
  );
  const heraldLatency = summarize(latency.a, ["p50_ms", "p99_ms", "max_ms"]);
  const graphileLatency = summarize(latency.b, ["p50_ms", "p99_ms", "max_ms"]);
  print(heraldLatency);
  print(graphileLatency);
  print({
    bench: "latency_ratio",
    p50_ratio: round(heraldLatency.p50_ms / graphileLatency.p50_ms),
    p99_ratio: round(heraldLatency.p99_ms / graphileLatency.p99_ms),
  });
}

async function compareWrites() {
  const writes = await alternate(
    rounds,
    () => once("bench/herald-write.mjs", "herald_bench", { K: 0 }),
    () => once("bench/emmett-write.mjs", "emmett_bench"),
  );
  const write0 = summarize(writes.a, ["events_per_s"]);
  const emmett = summarize(writes.b, ["events_per_s"]);
  print(write0);
  print(await once("bench/herald-write.mjs", "herald_bench", { K: 2 }));
  print(emmett);
  print({ bench: "write_ratio", ratio: round(write0.events_per_s / emmett.events_per_s) });
}
