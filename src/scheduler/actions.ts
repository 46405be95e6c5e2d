import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { after } from "../db/keyset.js";
import { isoText } from "../db/timestamps.js";
import { type Clock, systemClock } from "../domain/clock.js";
import { type Page, pageFrom } from "../domain/cursor.js";
import {
  checkTimeZone,
  type MissedPolicy,
  missedPolicies,
  parseCron,
  parseEvery,
  type ScheduledActionState,
  ScheduleError,
  slotAfter,
} from "../domain/schedule.js";
import { type FieldError, HeraldError } from "../errors.js";
import { scheduledActionsQueue } from "../queue/definitions.js";
import { notifyQueue } from "../queue/enqueue.js";
import { cancelScheduled, enqueueScheduled, storedAction } from "../queue/enqueueScheduled.js";
import type { ScheduledActionRegistry } from "./registry.js";

/** A scheduled action as asked for (by the API or the library). */
export interface NewScheduledAction {
  tenantId: string;
  /** A name of the registry (`emit_event` is built in). */
  action: string;
  /** A one-off's time (RFC 3339 or a Date). Exactly one of `runAt`, `every` and `cron`. */
  runAt?: string | Date | undefined;
  /** A repeating action's interval: seconds, or an ISO 8601 duration such as `PT5M`. */
  every?: string | number | undefined;
  /** A repeating action's five-field cron expression, in `timeZone`. */
  cron?: string | undefined;
  /** IANA time zone of `cron`. @defaultValue UTC */
  timeZone?: string | undefined;
  payload?: Record<string, unknown> | undefined;
  /** Idempotency key: the same key again (per tenant) returns the stored action. */
  key?: string | undefined;
  /** @defaultValue skip */
  missed?: MissedPolicy | undefined;
}

export interface ScheduleOptions {
  registry: ScheduledActionRegistry;
  clock?: Clock;
  /** Attempts of a one-off, and of each slot of a repeating action. @defaultValue 5 */
  maxAttempts?: number;
}

/** How far in the past a one-off's `run_at` may lie (it then runs at once): further is refused as a mistake. */
export const runAtPastLimitMs = 3600_000;
/** How far ahead a one-off's `run_at` may lie. */
export const runAtFutureLimitMs = 10 * 366 * 24 * 3600_000;

/** An action as the API shows it. */
export interface ScheduledActionView {
  id: string;
  action: string;
  state: ScheduledActionState;
  run_at: string;
  next_run_at: string | null;
  every: string | null;
  cron: string | null;
  time_zone: string | null;
  missed: MissedPolicy;
  payload: Record<string, unknown>;
  key: string | null;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  last_run_at: string | null;
  cancelled_at: string | null;
  created_at: string;
  duplicate?: boolean;
}

const invalid = (errors: FieldError[]) =>
  new HeraldError("validation_failed", errors.map((e) => `${e.path} ${e.message}`).join("; "), errors);

/**
 * Check an action and its schedule; the error names each field at fault (JSON pointers into the action, e.g.
 * `/cron`). Returns its first slot: `run_at`, one `every` from now, or the cron expression's next time.
 */
export function firstSlot(a: NewScheduledAction, registry: ScheduledActionRegistry, now: Date): Date {
  const errors: FieldError[] = [];
  if (!Object.hasOwn(registry, a.action))
    errors.push({ path: "/action", message: `unknown action; known: ${Object.keys(registry).join(", ")}` });
  const given = (["runAt", "every", "cron"] as const).filter((f) => a[f] !== undefined);
  if (given.length !== 1) errors.push({ path: "", message: "needs exactly one of run_at, every and cron" });
  if (a.missed !== undefined && !missedPolicies.includes(a.missed))
    errors.push({ path: "/missed", message: `must be one of ${missedPolicies.join(", ")}` });
  if (a.timeZone !== undefined && a.cron === undefined)
    errors.push({ path: "/time_zone", message: "applies to cron only" });
  let slot: Date | undefined;
  try {
    if (a.runAt !== undefined) {
      const at = a.runAt instanceof Date ? a.runAt : new Date(a.runAt);
      const ms = at.getTime();
      if (Number.isNaN(ms)) errors.push({ path: "/run_at", message: "must be an RFC 3339 time" });
      else if (ms < now.getTime() - runAtPastLimitMs)
        errors.push({ path: "/run_at", message: "must not lie more than an hour in the past" });
      else if (ms > now.getTime() + runAtFutureLimitMs)
        errors.push({ path: "/run_at", message: "must lie within ten years from now" });
      else slot = at;
    } else if (a.every !== undefined) {
      slot = new Date(now.getTime() + parseEvery(a.every));
    } else if (a.cron !== undefined) {
      slot = slotAfter({ cron: parseCron(a.cron, a.timeZone ?? "UTC") }, now);
    }
  } catch (error) {
    if (!(error instanceof ScheduleError)) throw error;
    errors.push({ path: `/${error.field}`, message: error.message });
  }
  if (a.timeZone !== undefined && a.cron === undefined) {
    try {
      checkTimeZone(a.timeZone);
    } catch (error) {
      if (error instanceof ScheduleError) errors.push({ path: "/time_zone", message: error.message });
    }
  }
  if (errors.length > 0 || !slot) throw invalid(errors);
  return slot;
}

/**
 * Schedule an action in the caller's transaction (its workers are woken at commit). The same tenant + `key`
 * again returns the stored action with `duplicate: true`, whatever else was asked.
 */
export async function scheduleAction(
  executor: Executor,
  a: NewScheduledAction,
  { registry, clock = systemClock, maxAttempts = 5 }: ScheduleOptions,
): Promise<ScheduledActionView> {
  const runAt = firstSlot(a, registry, clock.now());
  const queued = enqueueScheduled({
    tenantId: a.tenantId,
    action: a.action,
    payload: a.payload ?? {},
    runAt,
    every: a.every === undefined ? null : String(a.every),
    cron: a.cron ?? null,
    timeZone: a.cron === undefined ? null : (a.timeZone ?? "UTC"),
    missed: a.missed ?? "skip",
    key: a.key ?? null,
    maxAttempts,
  });
  type Queued = { action_id: string; duplicate: boolean };
  let rows = await query<Queued>(executor, queued);
  // The key's first action committed while the insert ran: it is there now.
  if (rows.length === 0 && a.key !== undefined)
    rows = await query<Queued>(executor, storedAction(a.tenantId, a.key));
  const row = rows[0];
  const view = row && (await getScheduledAction(executor, a.tenantId, row.action_id));
  if (!row || !view) throw new HeraldError("conflict", "the action's key is being used by another request");
  if (!row.duplicate) await notifyQueue(executor, scheduledActionsQueue);
  return row.duplicate ? { ...view, duplicate: true } : view;
}

interface Row extends Omit<ScheduledActionView, "duplicate" | "payload"> {
  payload: Record<string, unknown> | string;
}

const iso = (column: string) => sql.raw(isoText(column));

/** An action's state (see `scheduledActionStates`), from its queue row `a`. */
export const stateOf = sql.raw(`case when a.cancelled_at is not null then 'cancelled'
  when a.status = 'processing' then 'running' when a.status = 'dead' then 'dead'
  when a.status = 'completed' then 'completed' when a.last_error is not null then 'retrying'
  else 'scheduled' end`);

/** The view's columns over rows `a` of `rows` (a query of whole `scheduled_actions` rows, no data change). */
const viewOf = (rows: SQL, where: SQL = sql``, tail: SQL = sql``) =>
  sql`with a as (${rows}) select a.action_id as id, a.action_type as action, ${stateOf} as state,
      ${iso("a.run_at")} as run_at,
      case when a.status = 'pending' and a.cancelled_at is null then ${iso("a.next_attempt_at")} end as next_run_at,
      a.every, a.cron, a.time_zone, a.missed, a.payload, a.dedupe_key as key,
      a.attempts - a.max_attempts + a.slot_max_attempts as attempts, a.slot_max_attempts as max_attempts,
      a.last_error, ${iso("a.last_run_at")} as last_run_at, ${iso("a.cancelled_at")} as cancelled_at,
      ${iso("a.created_at")} as created_at
    from a ${where} ${tail}`;

const toView = ({ payload, ...row }: Row): ScheduledActionView => ({
  ...row,
  payload: typeof payload === "string" ? (JSON.parse(payload) as Record<string, unknown>) : payload,
  attempts: Number(row.attempts),
  max_attempts: Number(row.max_attempts),
});

/** The tenant's actions (rows queued by other code than `scheduleAction` have no action id, and are none). */
const rowsOf = (tenantId: string) =>
  sql`select * from scheduled_actions where tenant_id = ${tenantId} and action_id is not null`;

/** One action of the tenant, or undefined. */
export async function getScheduledAction(
  executor: Executor,
  tenantId: string,
  id: string,
): Promise<ScheduledActionView | undefined> {
  const rows = await query<Row>(executor, viewOf(sql`${rowsOf(tenantId)} and action_id = ${id}`));
  return rows[0] && toView(rows[0]);
}

export interface ScheduledActionFilter {
  action?: string | undefined;
  state?: ScheduledActionState | undefined;
}

/** The tenant's actions, newest first, `limit` at a time. */
export async function listScheduledActions(
  executor: Executor,
  tenantId: string,
  filter: ScheduledActionFilter,
  limit: number,
  cursor: string | undefined,
): Promise<Page<ScheduledActionView>> {
  const position = after("scheduled_actions", "created_at", "action_id", cursor);
  const rows = await query<Row>(
    executor,
    viewOf(
      sql`${rowsOf(tenantId)} ${filter.action ? sql`and action_type = ${filter.action}` : sql``}
        ${position ? sql`and ${position}` : sql``}
        order by created_at desc, action_id desc`,
      filter.state ? sql`where ${stateOf} = ${filter.state}` : sql``,
      sql`order by a.created_at desc, a.action_id desc limit ${limit + 1}`,
    ),
  );
  return pageFrom(rows.map(toView), limit, (row) => ({ at: row.created_at, id: row.id }));
}

/**
 * Cancel an action: it runs no more (a repeating action's slot running now finishes). `not_found` for
 * another tenant's or no action; `conflict` for a one-off that is running or has run.
 */
export async function cancelScheduledAction(
  executor: Executor,
  tenantId: string,
  id: string,
  clock: Clock = systemClock,
): Promise<void> {
  const cancelled = await query(executor, cancelScheduled(tenantId, id, clock.now()));
  if (cancelled.length > 0) return;
  const action = await getScheduledAction(executor, tenantId, id);
  if (!action) throw new HeraldError("not_found", "Scheduled action not found");
  throw new HeraldError(
    "conflict",
    `the action has already ${action.state === "running" ? "started" : "run"}`,
  );
}
