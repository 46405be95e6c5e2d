// Runs retention in its own process (with tsx: `node --import tsx`) and SIGKILLs itself right after the step
// named by KILL_AFTER (`exported`, `verified`) has committed: test/retention.int.spec.ts's crash injection.
import postgres from "postgres";
import { runRetention } from "../../src/retention/archive.ts";

const sql = postgres(process.env.RETENTION_DB_URL, { max: 2, onnotice: () => {} });
const killAfter = process.env.KILL_AFTER;
const result = await runRetention(sql, {
  archiveDir: process.env.ARCHIVE_DIR,
  retentionMonths: Number(process.env.RETENTION_MONTHS),
  afterStep(step, partition) {
    process.stdout.write(`step ${step} ${partition}\n`);
    if (step === killAfter) process.kill(process.pid, "SIGKILL");
  },
});
process.stdout.write(`done ${result.rows}\n`);
await sql.end();
