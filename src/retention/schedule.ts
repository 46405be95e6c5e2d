import postgres from "postgres";
import { type RetentionResult, runRetention } from "./archive.js";

export interface RetentionScheduleOptions {
  /** postgres:// URL (retention streams COPY; PGlite keeps every month). */
  url: string;
  retentionMonths: number;
  archiveDir: string;
  /** First run this long after the start (the workers' own start comes first). @defaultValue 60000 */
  firstRunMs?: number;
  /** @defaultValue 3600000 (hourly) */
  intervalMs?: number;
  onRun?: (result: RetentionResult) => void;
  onError?: (error: unknown) => void;
}

/**
 * Retention in the workers: a timer (a minute after the start, then hourly) runs `runRetention`. One worker
 * at a time across processes: each run holds a session advisory lock, and a worker that finds it taken skips
 * its turn. A run stopped half-way (a crash, a deploy) is resumed by the next (see archive.ts).
 */
export function startRetention(options: RetentionScheduleOptions): { stop(): Promise<void> } {
  const sql = postgres(options.url, { max: 3, onnotice: () => {} });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = async () => {
    const connection = await sql.reserve();
    try {
      const [lock] = await connection<
        { ok: boolean }[]
      >`select pg_try_advisory_lock(hashtext('herald_retention')) as ok`;
      if (!lock?.ok) return;
      try {
        const result = await runRetention(sql, {
          retentionMonths: options.retentionMonths,
          archiveDir: options.archiveDir,
        });
        options.onRun?.(result);
      } finally {
        await connection`select pg_advisory_unlock(hashtext('herald_retention'))`;
      }
    } finally {
      connection.release();
    }
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run()
        .catch((error: unknown) => options.onError?.(error))
        .finally(() => {
          running = undefined;
          schedule(options.intervalMs ?? 3_600_000);
        });
    }, ms);
    timer.unref();
  };
  schedule(options.firstRunMs ?? 60_000);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      await sql.end({ timeout: 5 });
    },
  };
}
