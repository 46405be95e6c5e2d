import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * `src/queue/` owns every queue state change: no file outside it writes a queue row's status or claim
 * columns (`status`, `attempts`, `next_attempt_at`, `locked_by`, `locked_until`) — neither an UPDATE that
 * sets one, nor an INSERT that lists one, in SQL text or through Drizzle's `update()`/`insert()` of a queue
 * table. Others call the functions and statement builders of `src/queue/`. A regex over the source text:
 * simple, and strict enough for the statements this code base writes.
 */
const queueTables = ["outbox", "webhook_deliveries", "inbound_events", "scheduled_actions"];
const drizzleTables = ["outbox", "webhookDeliveries", "inboundEvents", "scheduledActions"];
const claimColumns = /\b(status|attempts|next_attempt_at|locked_by|locked_until)\b/i;

const tables = queueTables.join("|");
const sqlUpdate = new RegExp(`\\bupdate\\s+(${tables})\\b([\\s\\S]*?)\\bwhere\\b`, "gi");
const sqlInsert = new RegExp(`\\binsert\\s+into\\s+(${tables})\\s*\\(([^)]*)\\)`, "gi");
const drizzleWrite = new RegExp(`\\.(update|insert)\\(\\s*(${drizzleTables.join("|")})\\s*\\)`, "g");

/** What a source text does to a queue row's state, one line per statement. */
function queueWrites(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(sqlUpdate)) {
    const set = m[2]!.replace(/\$\{[^}]*\}/g, "");
    if (claimColumns.test(set)) found.push(`update ${m[1]} sets ${set.match(claimColumns)![1]}`);
  }
  for (const m of text.matchAll(sqlInsert))
    if (claimColumns.test(m[2]!)) found.push(`insert into ${m[1]} lists ${m[2]!.match(claimColumns)![1]}`);
  for (const m of text.matchAll(drizzleWrite)) found.push(`drizzle ${m[1]}(${m[2]})`);
  return found;
}

function sourceFiles(dir: string, under = ""): string[] {
  return readdirSync(join(dir, under), { withFileTypes: true }).flatMap((entry) => {
    const path = under === "" ? entry.name : `${under}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(dir, path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

describe("queue state changes", () => {
  const src = join(dirname(new URL(import.meta.url).pathname), "../src");

  it("are written only in src/queue/", () => {
    const outside = sourceFiles(src).filter((file) => !file.startsWith("queue/"));
    expect(outside.length).toBeGreaterThan(50);
    const found = outside.flatMap((file) =>
      queueWrites(readFileSync(join(src, file), "utf8")).map((w) => `src/${file}: ${w}`),
    );
    expect(found, `Move these into a function of src/queue/:\n${found.join("\n")}`).toEqual([]);
  });

  it("are found in SQL text and Drizzle calls, and other writes are not", () => {
    const text = [
      "sql`update outbox o set status = 'pending', attempts = 0 where o.id = $1`",
      "sql`update webhook_deliveries set next_attempt_at = now(), updated_at = now() where id = 1`",
      "sql`insert into inbound_events (tenant_id, status) values (1, 'pending')`",
      "await executor.update(scheduledActions).set({ lockedBy: null })",
      // Not a state change: another column of a queue table, a read, another table.
      "sql`update webhook_deliveries set rejected_reason = $1 where id = $2`",
      "sql`select count(*) from outbox where status = 'pending'`",
      "sql`update outbound_messages m set status = b.status where m.id = b.id`",
      "sql`insert into events (id, tenant_id) values (1, 2)`",
    ].join("\n");
    expect(queueWrites(text)).toEqual([
      "update outbox sets status",
      "update webhook_deliveries sets next_attempt_at",
      "insert into inbound_events lists status",
      "drizzle update(scheduledActions)",
    ]);
  });
});
