import { invalidFields } from "./problem.js";

/** Time ranges of queries and bodies: `DateOrTime` values (schemas.ts) turned into instants, checked once. */

const dateOnly = /^\d{4}-\d{2}-\d{2}$/;
const dayMs = 86_400_000;

/** A range's first instant: a date without a time means the start of that day (UTC). */
export const rangeStart = (value: string) =>
  dateOnly.test(value) ? new Date(`${value}T00:00:00.000Z`) : new Date(value);

/** A range's end: a date without a time covers the whole day (UTC), so it means the start of the next. */
export const rangeEnd = (value: string) =>
  dateOnly.test(value) ? new Date(rangeStart(value).getTime() + dayMs) : new Date(value);

export interface RangeNames {
  /** Where the fields are: `body` or `querystring`. */
  in: "body" | "querystring";
  from: string;
  to: string;
  /** Whether `from` may equal `to` (an inclusive range of instants). @defaultValue false */
  inclusive?: boolean;
}

/** The instants of a range given by two optional fields; one that ends before it starts is refused. */
export function timeRange(
  from: string | undefined,
  to: string | undefined,
  names: RangeNames,
): { from: Date | undefined; to: Date | undefined } {
  const start = from === undefined ? undefined : rangeStart(from);
  const end = to === undefined ? undefined : rangeEnd(to);
  if (start && end && (names.inclusive ? start > end : start >= end)) {
    const path = `/${names.in}/${names.to}`;
    throw names.inclusive
      ? invalidFields(
          [{ path, message: `must not be before ${names.from}` }],
          `${names.from} must not be after ${names.to}`,
        )
      : invalidFields(
          [{ path, message: `must be after ${names.from}` }],
          `${names.from} must be before ${names.to}`,
        );
  }
  return { from: start, to: end };
}
