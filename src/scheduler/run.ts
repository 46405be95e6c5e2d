import { query, type Tx } from "../db/client.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import type { Clock } from "../domain/clock.js";
import { type MissedPolicy, planSlot, scheduleOf } from "../domain/schedule.js";
import { stageNextSlots } from "../queue/enqueueScheduled.js";
import type { QueueRow } from "../queue/row.js";
import type { ScheduledActionRegistry, ScheduledRun } from "./registry.js";

/** A claimed slot and what became of it. */
export interface SlotOutcome {
  run: ScheduledRun;
  /** Whether the action ran (false: cancelled, or missed under `skip`). */
  ran: boolean;
  /** When the worker started it. */
  startedAt: Date;
}

/**
 * Run a chunk of claimed slots in the caller's transaction, which then completes their rows:
 *
 * 1. for each repeating action, its plan (`planSlot`): run this slot or skip it as missed, and which slot
 *    comes next — staged on the row (`stageNextSlots`), which also checks the lease and locks the row, so
 *    the completion moves the row to that slot in this same transaction;
 * 2. the handlers, each with the runs of its action at once.
 *
 * The slot's effects and its row's move to the next slot commit together or not at all: a crash before the
 * commit leaves the row at this slot, claimed again once its lease expires, with nothing of the first try.
 */
export async function runSlots(
  tx: Tx,
  rows: readonly QueueRow[],
  registry: ScheduledActionRegistry,
  clock: Clock,
): Promise<SlotOutcome[]> {
  const startedAt = clock.now();
  const outcomes: SlotOutcome[] = [];
  const staged: Parameters<typeof stageNextSlots>[0] = [];
  for (const row of rows) {
    const slot = parseDbTimestamp(row.run_at);
    const schedule = scheduleOf({
      every: row.every as string | null,
      cron: row.cron as string | null,
      timeZone: row.time_zone as string | null,
    });
    const cancelled = row.cancelled_at != null;
    const plan =
      schedule && !cancelled ? planSlot(schedule, slot, startedAt, row.missed as MissedPolicy) : undefined;
    const ran = !cancelled && (plan?.run ?? true);
    if (schedule)
      staged.push({
        id: row.id,
        attempts: row.attempts,
        lockedBy: String(row.locked_by),
        next: plan?.next ?? null,
        ranAt: ran ? startedAt : null,
      });
    outcomes.push({
      ran,
      startedAt,
      run: {
        // A row queued by other code than `scheduleAction` has no action id: its row id stands in.
        actionId: String(row.action_id ?? row.id),
        tenantId: String(row.tenant_id),
        action: String(row.action_type),
        payload: (typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload) as Record<
          string,
          unknown
        >,
        slot,
        repeating: schedule !== undefined,
        attempt: row.attempts - row.max_attempts + Number(row.slot_max_attempts),
      },
    });
  }
  if (staged.length > 0) {
    const held = await query(tx, stageNextSlots(staged));
    if (held.length !== staged.length) throw new Error("lease lost before the slot ran");
  }
  const byAction = new Map<string, ScheduledRun[]>();
  for (const { run, ran } of outcomes) {
    if (!ran) continue;
    const runs = byAction.get(run.action) ?? [];
    runs.push(run);
    byAction.set(run.action, runs);
  }
  for (const [action, runs] of byAction) {
    const handler = registry[action];
    if (!Object.hasOwn(registry, action) || !handler)
      throw new Error(`no handler for scheduled action "${action}" in this worker`);
    await handler(tx, runs);
  }
  return outcomes;
}
