import { Cron } from "croner";

/**
 * The time rules of scheduled actions (pure): their vocabularies, `every` and `cron` parsed and checked,
 * and the slots of a repeating action.
 */

/**
 * What a repeating action does about slots missed while no worker ran it (a slot is missed when, by the
 * time it could start, its following slot is due too): `skip` runs none of them and waits for the next
 * slot to come; `run_once` runs once for all of them, then goes on with the next slot to come.
 */
export const missedPolicies = ["skip", "run_once"] as const;
export type MissedPolicy = (typeof missedPolicies)[number];

/**
 * An action's state as the API shows it: `scheduled` (waiting for its time), `running` (a worker holds it),
 * `retrying` (its last attempt failed; the next comes after a back-off), `completed` (a one-off that ran),
 * `dead` (its attempts are used up), `cancelled`.
 */
export const scheduledActionStates = [
  "scheduled",
  "running",
  "retrying",
  "completed",
  "dead",
  "cancelled",
] as const;
export type ScheduledActionState = (typeof scheduledActionStates)[number];

/** A rule of a schedule that does not parse: `field` names the input at fault. */
export class ScheduleError extends Error {
  override name = "ScheduleError";
  constructor(
    readonly field: "every" | "cron" | "time_zone",
    message: string,
  ) {
    super(message);
  }
}

/** Shortest interval of `every` (a slot a second at most). */
export const minEveryMs = 1000;
/** Longest interval of `every`. */
export const maxEveryMs = 366 * 24 * 3600 * 1000;

const isoDuration = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/;

/**
 * `every` as milliseconds: a whole number of seconds, or an ISO 8601 duration of weeks, days, hours, minutes
 * and seconds (`PT5M`, `P1DT12H`; a day is 24 hours). Years and months are refused: their length varies —
 * use `cron` for calendar schedules.
 */
export function parseEvery(every: string | number): number {
  let ms: number;
  if (typeof every === "number" || /^\d+$/.test(every)) {
    ms = Number(every) * 1000;
  } else {
    const m = isoDuration.exec(every);
    if (!m || every === "P" || every.endsWith("T"))
      throw new ScheduleError(
        "every",
        "must be seconds or an ISO 8601 duration of weeks to seconds, e.g. PT5M",
      );
    const [w, d, h, min, s] = m.slice(1).map((v) => Number(v ?? 0)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    ms = Math.round((((w * 7 + d) * 24 + h) * 60 + min) * 60_000 + s * 1000);
  }
  if (!Number.isFinite(ms) || ms < minEveryMs || ms > maxEveryMs)
    throw new ScheduleError("every", "must be between 1 second and 366 days");
  return ms;
}

/** Whether `zone` is an IANA time zone this runtime knows. */
export function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
  } catch {
    throw new ScheduleError("time_zone", "must be an IANA time zone such as Europe/Berlin");
  }
}

/** A five-field cron expression (minute hour day-of-month month day-of-week) in `timeZone`. */
export function parseCron(expression: string, timeZone = "UTC"): Cron {
  checkTimeZone(timeZone);
  if (expression.trim().split(/\s+/).length !== 5)
    throw new ScheduleError("cron", "must have five fields: minute hour day-of-month month day-of-week");
  try {
    // Day-of-month and day-of-week both given: either matches, as in Vixie cron (croner's default).
    return new Cron(expression, { timezone: timeZone, paused: true, mode: "5-part" });
  } catch (error) {
    throw new ScheduleError("cron", error instanceof Error ? error.message : String(error));
  }
}

/** A repeating schedule: a fixed interval from an anchor, or a cron expression in a time zone. */
export type Schedule = { everyMs: number } | { cron: Cron };

export function scheduleOf(s: {
  every?: string | null | undefined;
  cron?: string | null | undefined;
  timeZone?: string | null | undefined;
}): Schedule | undefined {
  if (s.every != null) return { everyMs: parseEvery(s.every) };
  if (s.cron != null) return { cron: parseCron(s.cron, s.timeZone ?? "UTC") };
  return undefined;
}

/** The first slot strictly after `after`. For `every`, slots lie at whole intervals from `anchor`. */
export function slotAfter(schedule: Schedule, after: Date, anchor: Date = after): Date {
  if ("everyMs" in schedule) {
    const { everyMs } = schedule;
    const since = after.getTime() - anchor.getTime();
    const steps = since < 0 ? 0 : Math.floor(since / everyMs) + 1;
    return new Date(anchor.getTime() + steps * everyMs);
  }
  const next = schedule.cron.nextRun(after);
  if (!next) throw new ScheduleError("cron", "has no future run");
  return next;
}

/** What to do with a slot due at `slot` that a worker starts at `now`. */
export interface SlotPlan {
  /** Run the action now (false: the slot was missed and the policy is to skip it). */
  run: boolean;
  /** The slot after it (always after `now`). */
  next: Date;
}

/**
 * The plan for a slot that starts at `now`: an on-time slot runs and is followed by the next one; a missed slot
 * (its following slot is due already) runs only under `run_once`, and either way the schedule continues with
 * the first slot after `now` — so however long the downtime, it runs at most once for it.
 */
export function planSlot(schedule: Schedule, slot: Date, now: Date, missed: MissedPolicy): SlotPlan {
  const following = slotAfter(schedule, slot, slot);
  if (following.getTime() > now.getTime()) return { run: true, next: following };
  return { run: missed === "run_once", next: slotAfter(schedule, now, slot) };
}
