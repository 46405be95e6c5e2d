/**
 * A PostgreSQL array literal (`{"a","b",NULL}`) for one text parameter cast to `type[]` in SQL, so a batch's
 * column travels as one value and `unnest` unpacks it far cheaper than a JSON document of objects. Works the
 * same on postgres.js and PGlite because it is plain text. All-null columns become SQL NULL (`unnest` pads a
 * NULL array with NULLs).
 */
export function pgArray(values: readonly (string | number | null | undefined)[]): string | null {
  let any = false;
  const items = values.map((value) => {
    if (value === null || value === undefined) return "NULL";
    any = true;
    if (typeof value === "number") return String(value);
    return `"${value.replace(/[\\"]/g, "\\$&")}"`;
  });
  return any ? `{${items.join(",")}}` : null;
}
