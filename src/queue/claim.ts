import { sql } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { CachedStatement } from "../db/statement.js";
import type { QueueDefinition } from "./definitions.js";
import { type QueueRow, relaxedCommit, toQueueRow } from "./row.js";

export interface ClaimOptions {
  workerId: string;
  limit: number;
  leaseMs: number;
  now: Date;
  /** Values of the queue's `claimFilter` placeholders (see `QueueDefinition.claimDefaults`). */
  filter?: Record<string, unknown> | undefined;
}

/**
 * Claim up to `limit` due rows: lock them with SKIP LOCKED (so workers never wait on each other), mark them
 * processing under this worker's lease and count the attempt. The CTE is an optimization fence: the
 * UPDATE touches exactly the rows the LIMIT chose, found by primary key from an array (joined to the CTE
 * instead, the planner hashed the whole table on every claim of a short queue). `now` comes from the
 * worker's clock at millisecond precision while rows default to the database's microsecond `now()`, so a
 * row is due within the whole millisecond of `now` (else a row written in the same millisecond would wait
 * for the next poll). A queue claimed in lanes (`claimLanes`) locks up to `limit` rows in each, and the
 * earliest `limit` of them are claimed (the others are let go when the statement ends).
 */
export async function claimBatch(
  executor: Executor,
  queue: QueueDefinition,
  options: ClaimOptions,
): Promise<QueueRow[]> {
  const { statement, values } = claimFor(queue, options);
  const rows = await statement.run(executor, values);
  return rows.map(toQueueRow).sort((a, b) => a.id - b.id);
}

/** The plan PostgreSQL would follow for this claim (`EXPLAIN`, JSON), without claiming anything. */
export function explainClaim(executor: Executor, queue: QueueDefinition, options: ClaimOptions) {
  const { statement, values } = claimFor(queue, options);
  return statement.explain(executor, values);
}

function claimFor(queue: QueueDefinition, options: ClaimOptions) {
  const filter = { ...queue.claimDefaults, ...options.filter };
  return {
    statement: claimStatement(queue, queue.claimLanes?.of(filter) ?? ""),
    values: {
      ...filter,
      now: options.now.toISOString(),
      limit: options.limit,
      workerId: options.workerId,
      leaseMs: options.leaseMs,
    },
  };
}

const statements = new WeakMap<QueueDefinition, Map<string, CachedStatement>>();

/** Each queue's claim (per set of lanes), built once: its text depends only on them. */
function claimStatement(queue: QueueDefinition, lanes: string): CachedStatement {
  let built = statements.get(queue);
  if (!built) {
    built = new Map();
    statements.set(queue, built);
  }
  let statement = built.get(lanes);
  if (!statement) {
    const now = sql`${sql.placeholder("now")}::timestamptz`;
    const limit = sql`${sql.placeholder("limit")}`;
    const due = sql`q.status = 'pending' and q.next_attempt_at < ${now} + interval '1 millisecond'
      ${queue.claimFilter ? sql`and ${queue.claimFilter}` : sql``}`;
    const candidates = queue.claimLanes
      ? queue.claimLanes.candidates(lanes, { due, limit })
      : sql`select q.id, q.next_attempt_at from ${queue.table} q where ${due}
        order by q.next_attempt_at, q.id limit ${limit} for update of q skip locked`;
    statement = new CachedStatement(
      () => sql`with candidates as (${candidates})
    update ${queue.table} t set status = 'processing', locked_by = ${sql.placeholder("workerId")},
      locked_until = ${now} + ${sql.placeholder("leaseMs")} * interval '1 millisecond',
      attempts = t.attempts + 1, updated_at = ${now}
    where t.id = any (array(select id from candidates order by next_attempt_at, id limit ${limit}))
      and ${relaxedCommit}
    returning t.* ${queue.claimReturning ?? sql``}`,
    );
    built.set(lanes, statement);
  }
  return statement;
}
