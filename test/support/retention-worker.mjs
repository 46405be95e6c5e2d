// Runs retention, or the import of IMPORT_FILE, in its own process (with tsx: `node --import tsx`) and
// SIGKILLs itself right after the step named by KILL_AFTER (retention: `exported`, `verified`; import:
// `copied`, `indexed`): test/retention.int.spec.ts's crash injection.
import postgres from "postgres";
import { runRetention } from "../../src/retention/archive.ts";
import { importArchive } from "../../src/retention/import.ts";

const sql = postgres(process.env.RETENTION_DB_URL, { max: 2, onnotice: () => {} });
const killAfter = process.env.KILL_AFTER;
function afterStep(step, partition) {
  process.stdout.write(`step ${step} ${partition}\n`);
  if (step === killAfter) process.kill(process.pid, "SIGKILL");
}
if (process.env.IMPORT_FILE) {
  const result = await importArchive(sql, process.env.IMPORT_FILE, { afterStep });
  process.stdout.write(`imported ${result.inserted}\n`);
} else {
  const result = await runRetention(sql, {
    archiveDir: process.env.ARCHIVE_DIR,
    retentionMonths: Number(process.env.RETENTION_MONTHS),
    afterStep,
  });
  process.stdout.write(`done ${result.rows}\n`);
}
await sql.end();
