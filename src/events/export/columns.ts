/**
 * The columns of an export, in order: the public fields of an event (`publicEvent`), the same in every format.
 * NDJSON keeps payload and metadata as JSON values, CSV and Parquet carry them as JSON text.
 */
export const exportColumns = [
  "id",
  "event_type",
  "source",
  "timestamp",
  "created_at",
  "contact_id",
  "session_id",
  "message_id",
  "event_key",
  "correlation_id",
  "causation_id",
  "schema_version",
  "sequence_number",
  "payload",
  "metadata",
] as const;

export type ExportColumn = (typeof exportColumns)[number];

const dayMs = 86_400_000;
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * Times of the log as the API shows them (RFC 3339, UTC, milliseconds: what `toISOString` gives), formatted
 * a row at a time several times faster: the date part is kept while consecutive times share their day, as
 * an export's rows do. One formatter per column (two columns would keep displacing each other's day).
 */
export function isoFormatter(): (ms: number) => string {
  let day = Number.NaN;
  let prefix = "";
  return (ms) => {
    const start = Math.floor(ms / dayMs) * dayMs;
    if (start !== day) {
      const iso = new Date(start).toISOString();
      day = start;
      prefix = iso.slice(0, iso.indexOf("T") + 1);
    }
    let rest = ms - start;
    const hours = Math.floor(rest / 3_600_000);
    rest -= hours * 3_600_000;
    const minutes = Math.floor(rest / 60_000);
    rest -= minutes * 60_000;
    const seconds = Math.floor(rest / 1000);
    return `${prefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(rest - seconds * 1000)}Z`;
  };
}
