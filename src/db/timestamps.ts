/** A timestamptz as the drivers hand raw results back ("2026-11-22 23:17:03.1+00") or as a Date, in ms. */
export function parseDbTimestamp(value: unknown): Date {
  if (value instanceof Date) return value;
  return new Date(
    String(value)
      .replace(" ", "T")
      .replace(/([+-]\d\d)$/, "$1:00"),
  );
}
