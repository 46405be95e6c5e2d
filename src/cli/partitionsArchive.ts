import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import postgres from "postgres";
import { loadConfig } from "../config.js";
import { type ImportStep, importArchive, runRetention } from "../retention/index.js";

/** A postgres.js client for retention's COPY streams (PostgreSQL only: PGlite has no archives). */
function retentionClient(): postgres.Sql {
  const config = loadConfig();
  const url = config.systemDatabaseUrl ?? config.databaseUrl;
  if (!url) throw new Error("retention and import need PostgreSQL (DATABASE_URL); PGlite keeps every month");
  return postgres(url, { max: 2, onnotice: () => {} });
}

function progressBar(label: string) {
  return new SingleBar({
    format: `${label} [{bar}] {value}/{total} rows | {rate} rows/s | {what}`,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 10_000,
  });
}

/**
 * `herald partitions archive [--month YYYY-MM] [--dry-run]` (added to the `partitions` group) and
 * `herald import FILE`.
 */
export function registerArchiveCommands(partitions: Command, program: Command) {
  partitions
    .command("archive")
    .description(
      "archive the months past HERALD_RETENTION_MONTHS (or --month): export, verify, then drop (a progress bar)",
    )
    .option("--month <YYYY-MM>", "only this month (never the current or the previous one)")
    .option("--dry-run", "say what would be archived, change nothing")
    .action(async (options: { month?: string; dryRun?: boolean }) => {
      const config = loadConfig();
      // --month alone: archive that month whatever the retention setting (still never the last two months).
      const retentionMonths = config.retentionMonths ?? (options.month ? 1 : undefined);
      if (retentionMonths === undefined) {
        process.stdout.write(
          "retention is off (HERALD_RETENTION_MONTHS); give --month to archive one month\n",
        );
        return;
      }
      const sql = retentionClient();
      const bar = progressBar("archive");
      let shown = false;
      let started = Date.now();
      let base = 0;
      let total = 0;
      try {
        const plan = await runRetention(sql, {
          archiveDir: config.archiveDir,
          retentionMonths,
          dryRun: true,
          ...(options.month ? { month: options.month } : {}),
        });
        for (const m of plan.months) process.stdout.write(`${m.partition}  ${m.month}  (${m.from})\n`);
        if (options.dryRun || plan.months.length === 0) {
          process.stdout.write(
            `${plan.months.length} partition(s) ${options.dryRun ? "would be" : ""} archived\n`,
          );
          return;
        }
        const estimates = await sql<{ n: number }[]>`
          select coalesce(sum(greatest(reltuples, 0)), 0)::float8 as n from pg_class
          where relname in ${sql(plan.months.map((m) => m.partition))}`;
        total = Math.max(1, Math.round(estimates[0]?.n ?? 1));
        started = Date.now();
        let step = "";
        const result = await runRetention(sql, {
          archiveDir: config.archiveDir,
          retentionMonths,
          ...(options.month ? { month: options.month } : {}),
          onProgress: ({ partition, step: now, rows }) => {
            if (`${partition} ${now}` !== step) {
              step = `${partition} ${now}`;
              if (now === "export") base = bar.getProgress() * total;
              started = Date.now();
            }
            const done = base + rows;
            const rate = Math.round(rows / Math.max((Date.now() - started) / 1000, 0.001));
            if (!shown) {
              bar.start(total, 0, { rate, what: step });
              shown = true;
            }
            if (done > bar.getTotal()) bar.setTotal(done);
            bar.update(done, { rate, what: step });
          },
          afterStep: (done, partition) => {
            if (!shown) process.stdout.write(`${partition}: ${done}\n`);
          },
        });
        if (shown) bar.stop();
        process.stdout.write(
          `archived ${result.months.length} partition(s): ${result.rows} rows, ${result.bytes} bytes, in ${config.archiveDir}\n`,
        );
      } finally {
        if (shown) bar.stop();
        await sql.end();
      }
    });

  program
    .command("import")
    .description("put an archive back as its partition: same rows, same ids; importing twice changes nothing")
    .argument("<file>", "an archive file written by retention (<table>_YYYY_MM.copy.gz)")
    .action(async (file: string) => {
      const sql = retentionClient();
      const bar = progressBar("import");
      const started = Date.now();
      let shown = false;
      try {
        const onProgress = (rows: number, total: number) => {
          const rate = Math.round(rows / Math.max((Date.now() - started) / 1000, 0.001));
          if (!shown) {
            bar.start(total, 0, { rate, what: file });
            shown = true;
          }
          if (rows > bar.getTotal()) bar.setTotal(rows);
          bar.update(rows, { rate, what: file });
        };
        // The bar counts rows as they are copied; the indexes are built after the last one.
        const afterStep = (step: ImportStep) => {
          if (step === "copied" && shown) bar.update({ what: `${file}: building indexes` });
        };
        const result = await importArchive(sql, file, { onProgress, afterStep });
        if (shown) bar.stop();
        process.stdout.write(
          `imported ${result.partition} (${result.month}): ${result.inserted} of its ${result.rows} rows added\n`,
        );
      } finally {
        if (shown) bar.stop();
        await sql.end();
      }
    });
}
