import { type SQL, sql } from "drizzle-orm";

export type Scalar = string | number | boolean | null | undefined;

const needsEscape = /[\\"]/;

/**
 * A PostgreSQL array literal (`{"a","b",NULL}`) for one text parameter cast to `type[]` in SQL, so a batch's
 * column travels as one value and `unnest` unpacks it far cheaper than a JSON document of objects. Works the
 * same on postgres.js and PGlite because it is plain text. All-null columns become SQL NULL (`unnest` pads a
 * NULL array with NULLs).
 */
export function pgArray(values: readonly Scalar[]): string | null {
  let any = false;
  const items = values.map((value) => {
    if (value === null || value === undefined) return "NULL";
    any = true;
    if (typeof value === "number") return String(value);
    if (typeof value === "boolean") return value ? "t" : "f";
    return needsEscape.test(value) ? `"${value.replace(/[\\"]/g, "\\$&")}"` : `"${value}"`;
  });
  return any ? `{${items.join(",")}}` : null;
}

/** One column of a batch: its name in SQL, its element type, and one value per row. */
export type Column =
  | { name: string; type: string; values: readonly Scalar[] }
  /** JSON documents, sent as one JSON array (`null`: no row has one). */
  | { name: string; type: "json"; json: readonly unknown[] | null };

/** A column's name and element type (`json`: JSON documents), for a statement built before its values. */
export type ColumnType = Pick<Column, "name" | "type">;

/** A column's values as the one parameter `unnest` takes for it. */
export const columnParam = (column: Column): string | null =>
  "json" in column ? (column.json === null ? null : JSON.stringify(column.json)) : pgArray(column.values);

/**
 * `unnest(…) with ordinality as alias(name, …, ord)`: a batch as rows, one parameter per column, `ord`
 * numbering the rows from 1 in input order. A single multi-argument unnest, so the columns line up without
 * any join for the planner to get wrong. Names and types come from code, never from input.
 */
export function unnestColumns(alias: string, columns: Column[]): SQL {
  return unnestOf(alias, columns, columns.map(columnParam));
}

/**
 * The same `unnest` with a placeholder per column, named after it, for a statement built once (see
 * `CachedStatement`); each placeholder's value is the column's `columnParam`.
 */
export function unnestPlaceholders(alias: string, columns: ColumnType[]): SQL {
  return unnestOf(
    alias,
    columns,
    columns.map((c) => sql.placeholder(c.name)),
  );
}

function unnestOf(alias: string, columns: ColumnType[], params: unknown[]): SQL {
  const arrays = sql.join(
    columns.map((c, i) =>
      c.type === "json"
        ? sql`array(select d from json_array_elements(${params[i]}::json) with ordinality as e(d, i) order by i)`
        : sql`${params[i]}::${sql.raw(c.type)}[]`,
    ),
    sql`, `,
  );
  return sql`unnest(${arrays}) with ordinality as ${sql.raw(alias)}(${sql.raw(columns.map((c) => c.name).join(", "))}, ord)`;
}
