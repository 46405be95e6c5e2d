/**
 * How a count over [start, end) is split between the rollups and the log (pure: no SQL here; `totals.ts`
 * turns a plan into one statement).
 */

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

/** Half-open time span; an undefined end is unbounded. */
export interface Span {
  start?: Date | undefined;
  end?: Date | undefined;
}

/**
 * How [start, end) splits: the whole hours in it (`whole`, hour-aligned ends, each end open when the
 * filter's is), and the partial hours before and after them (`lead`, `trail`). A range inside one hour is
 * all `lead`.
 */
export interface HourSplit {
  lead?: Span;
  whole?: Span;
  trail?: Span;
}

export function splitByHour(start: Date | undefined, end: Date | undefined): HourSplit {
  const from = start && new Date(Math.ceil(start.getTime() / hourMs) * hourMs);
  const to = end && new Date(Math.floor(end.getTime() / hourMs) * hourMs);
  if (start && end && from! >= to!) return start < end ? { lead: { start, end } } : {};
  return {
    ...(start && start < from! ? { lead: { start, end: from } } : {}),
    whole: { start: from, end: to },
    ...(end && to! < end ? { trail: { start: to, end } } : {}),
  };
}

/** Rows of one rollup table over a span aligned on its unit. */
export interface RollupPiece {
  table: "event_rollups" | "event_rollups_daily" | "event_rollups_monthly";
  column: "hour" | "day" | "month";
  span: Span;
}

export const hourly = (span: Span): RollupPiece => ({ table: "event_rollups", column: "hour", span });
const daily = (span: Span): RollupPiece => ({ table: "event_rollups_daily", column: "day", span });
const monthly = (span: Span): RollupPiece => ({ table: "event_rollups_monthly", column: "month", span });

/** The coarsest rollup a count may use: stats by hour need hours, by day days; anything else months. */
export type RollupGrain = "hour" | "day" | "month";

/** The UTC start of `at`'s month (`up`: of the next month, unless `at` is one). */
function monthStart(at: Date, up: boolean): Date {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  return up && start < at ? new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1)) : start;
}

/**
 * `span` (whole hours) as rollup pieces of at most `grain`: hours around its whole days, days around its whole
 * months, months in the middle (a year is then ~12 rows per type and source, not ~8,760).
 */
export function rollupPieces(whole: Span, grain: RollupGrain = "month"): RollupPiece[] {
  const from = whole.start && new Date(Math.ceil(whole.start.getTime() / dayMs) * dayMs);
  const to = whole.end && new Date(Math.floor(whole.end.getTime() / dayMs) * dayMs);
  if (grain === "hour" || (from && to && from >= to)) return [hourly(whole)];
  return [
    ...(whole.start && whole.start < from! ? [hourly({ start: whole.start, end: from })] : []),
    ...(grain === "day" ? [daily({ start: from, end: to })] : dailyAndMonthly({ start: from, end: to })),
    ...(whole.end && to! < whole.end ? [hourly({ start: to, end: whole.end })] : []),
  ];
}

/** Whole days as days around their whole months and months in the middle. */
function dailyAndMonthly(days: Span): RollupPiece[] {
  const from = days.start && monthStart(days.start, true);
  const to = days.end && monthStart(days.end, false);
  if (from && to && from >= to) return [daily(days)];
  return [
    ...(days.start && days.start < from! ? [daily({ start: days.start, end: from })] : []),
    monthly({ start: from, end: to }),
    ...(days.end && to! < days.end ? [daily({ start: to, end: days.end })] : []),
  ];
}

/**
 * How a count over [start, end) is made, every part exact: rollup rows, the events after the checkpoint in
 * `tail` (one span, so one walk of the (transaction_id, position) index), and events counted from the log
 * (`sign` -1: taken away). A partial hour at an end that covers more than half of its hour is counted as
 * the whole hour (rollup and tail) less the rest of it, so no end costs more than half an hour of the log.
 */
export interface CountPlan {
  rollups: RollupPiece[];
  tail?: Span;
  events: { span: Span; sign: 1 | -1 }[];
}

export function countPlan(
  start: Date | undefined,
  end: Date | undefined,
  grain: RollupGrain = "month",
): CountPlan {
  const { lead, whole, trail } = splitByHour(start, end);
  if (!whole) return { rollups: [], events: lead ? [{ span: lead, sign: 1 }] : [] };
  const plan: CountPlan = { rollups: rollupPieces(whole, grain), events: [] };
  const tail: Span = { ...whole };
  const longer = (edge: Span) => edge.end!.getTime() - edge.start!.getTime() > hourMs / 2;
  if (lead && longer(lead)) {
    const hour = new Date(lead.end!.getTime() - hourMs);
    plan.rollups.unshift(hourly({ start: hour, end: lead.end }));
    plan.events.push({ span: { start: hour, end: lead.start }, sign: -1 });
    tail.start = hour;
  } else if (lead) plan.events.push({ span: lead, sign: 1 });
  if (trail && longer(trail)) {
    const hourEnd = new Date(trail.start!.getTime() + hourMs);
    plan.rollups.push(hourly({ start: trail.start, end: hourEnd }));
    plan.events.push({ span: { start: trail.end, end: hourEnd }, sign: -1 });
    tail.end = hourEnd;
  } else if (trail) plan.events.push({ span: trail, sign: 1 });
  plan.tail = tail;
  return plan;
}
