import * as l from "./lib.mjs";

const u = await l.freshDatabase("herald_bench");
const g = await l.freshDatabase("graphile_bench");
for (const N of (process.env.NS ?? "20000").split(",")) {
  console.log(JSON.stringify(await l.runChild("bench/herald-drain.mjs", { BENCH_URL: u, N })));
  if (process.env.G)
    console.log(JSON.stringify(await l.runChild("bench/graphile-drain.mjs", { BENCH_URL: g, N })));
}
