import type { Query, SQL } from "drizzle-orm";
import { dialect, type Executor, runCompiled } from "./client.js";

/**
 * A statement turned into SQL text once and then run with new values each time: the values are Drizzle
 * placeholders (`sql.placeholder("name")`) in the SQL that `build` returns. For the hot statements whose
 * shape never changes (the claim, the event writer): Drizzle spends longer assembling their nested SQL
 * objects into text than PostgreSQL spends running them. On postgres.js it runs as a named prepared
 * statement (planned once per connection); on PGlite like any other statement.
 */
export class CachedStatement {
  private compiled: Query | undefined;

  constructor(private readonly build: () => SQL) {}

  run<T = Record<string, unknown>>(executor: Executor, values: Record<string, unknown>): Promise<T[]> {
    return runCompiled<T>(executor, this.query(), values, true);
  }

  /** PostgreSQL's plan for the statement with these values (`EXPLAIN`, JSON), without running it. */
  async explain(executor: Executor, values: Record<string, unknown>): Promise<unknown> {
    const query = this.query();
    const [row] = await runCompiled<Record<string, unknown>>(
      executor,
      { ...query, sql: `explain (format json) ${query.sql}` },
      values,
      false,
    );
    const plan = Object.values(row!)[0];
    return typeof plan === "string" ? JSON.parse(plan) : plan;
  }

  private query(): Query {
    this.compiled ??= dialect.sqlToQuery(this.build());
    return this.compiled;
  }
}
