import type { Query, SQL } from "drizzle-orm";
import { PgDialect, type PgSession } from "drizzle-orm/pg-core";
import type { Executor } from "./client.js";

const dialect = new PgDialect();

/**
 * A statement turned into SQL text once and then run with new values each time: the values are Drizzle
 * placeholders (`sql.placeholder("name")`) in the SQL that `build` returns. For the hot statements whose
 * shape never changes (the claim, the event writer): Drizzle spends longer assembling their nested SQL
 * objects into text than PostgreSQL spends running them. On postgres.js it runs as a named prepared
 * statement (planned once per connection); on PGlite like any other statement.
 */
export class CachedStatement {
  private compiled: Query | undefined;

  constructor(
    private readonly name: string,
    private readonly build: () => SQL,
  ) {}

  async run<T = Record<string, unknown>>(executor: Executor, values: Record<string, unknown>): Promise<T[]> {
    this.compiled ??= dialect.sqlToQuery(this.build());
    // The executor's session is the database's or the transaction's: the statement runs where it is asked to.
    const session = (executor as unknown as { session: PgSession }).session;
    const result = (await session
      .prepareQuery(this.compiled, undefined, this.name, false)
      .execute(values)) as unknown;
    // postgres.js returns the rows, PGlite a result holding them.
    return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
  }
}
