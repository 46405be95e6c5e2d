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
