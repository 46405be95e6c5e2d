/** Database errors classified by SQLSTATE (never by message text). */

export type DbErrorKind =
  | "unique_violation"
  | "foreign_key_violation"
  | "not_null_violation"
  | "check_violation"
  | "invalid_input"
  | "serialization_failure"
  | "unavailable"
  | "other";

const bySqlState: Record<string, DbErrorKind> = {
  "23505": "unique_violation",
  "23503": "foreign_key_violation",
  "23502": "not_null_violation",
  "23514": "check_violation",
  "22P02": "invalid_input",
  "22007": "invalid_input",
  "22008": "invalid_input",
  "22003": "invalid_input",
  // A NUL character in text or jsonb; a character the encoding cannot hold.
  "22P05": "invalid_input",
  "22021": "invalid_input",
  "40001": "serialization_failure",
  "40P01": "serialization_failure",
  // A wait past its bound: statement_timeout (or a cancelled query), lock_timeout.
  "57014": "unavailable",
  "55P03": "unavailable",
  "57P01": "unavailable",
  "57P02": "unavailable",
  "57P03": "unavailable",
  "53300": "unavailable",
};

/** `code` of a `DatabaseTimeoutError` (see deadline.ts): no answer within HERALD_DB_TIMEOUT_MS. */
export const databaseTimeoutCode = "HERALD_DB_TIMEOUT";

/** Node socket errors, postgres.js connection errors, our deadline: the server cannot be reached in time. */
const unreachable = new Set([
  databaseTimeoutCode,
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

const sessionEnded = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "57P01",
  "57P02",
  "57P03",
]);

/**
 * The connection an error came from is gone: its socket failed or closed, or the server ended the session
 * (FATAL: shutdown, terminated backend). Nothing more can be sent on it, not even a ROLLBACK (the server
 * rolls back a transaction whose session ended).
 */
export function connectionLost(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && (sessionEnded.has(code) || code.startsWith("08"));
}

/** The SQLSTATE or driver code of an error, looking through Drizzle's wrapper (`cause`). */
export function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Object; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * An error as one line for logs and `last_error`: the database's own message, not Drizzle's wrapper around it
 * (whose message repeats the whole statement and every parameter — a batch's arrays, megabytes).
 */
export function describeError(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (!(current instanceof Error && current.message.startsWith("Failed query:") && cause)) break;
    current = cause;
  }
  return current instanceof Error ? `${current.name}: ${current.message}` : String(current);
}

export function classifyDbError(error: unknown): DbErrorKind {
  const code = errorCode(error);
  if (code === undefined) return "other";
  if (unreachable.has(code) || code.startsWith("08")) return "unavailable";
  return bySqlState[code] ?? "other";
}
