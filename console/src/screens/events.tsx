import { useState } from "preact/hooks";
import { download, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { FilterForm, Paged, pageSize, useListFilter } from "../pager.js";
import { Empty, Fetched, figure, ProblemView, useAction, useApi } from "../ui.js";
import { EventTable, type HeraldEvent } from "./eventList.js";

/** The filters of GET /api/v1/events, by their query parameter, with their labels. */
const filters = [
  { name: "type", label: "Event type", hint: "exact, or a prefix such as message.*" },
  { name: "source", label: "Source", options: ["system", "webhook", "manual", "cron", "workflow"] },
  { name: "contact_id", label: "Contact" },
  { name: "session_id", label: "Session" },
  { name: "message_id", label: "Message" },
  { name: "correlation_id", label: "Correlation" },
  { name: "start", label: "From", hint: "inclusive: 2025-10-01 or 2025-10-01T12:00:00Z" },
  { name: "end", label: "To", hint: "exclusive; a date covers its whole day" },
] as const;
/** The applied filter: the non-empty values by query parameter. */
type FilterValues = Record<string, string>;

interface EventPage {
  events: HeraldEvent[];
  total: number;
  time_range: { start: string | null; end: string | null };
  next_cursor: string | null;
}

export function Events() {
  useTitle("Events");
  const { applied, paging, form } = useListFilter(filters, "/events");
  const page = useApi<EventPage>(
    `/api/v1/events${queryOf({ ...applied, limit: pageSize, cursor: paging.cursor })}`,
  );

  return (
    <section>
      <h1>Events</h1>
      <FilterForm label="Event filters" {...form} />

      <Fetched state={page}>
        {(p) => (
          <>
            <p class="total" aria-live="polite">
              <strong data-figure="events.total">{figure(p.total)}</strong>{" "}
              {p.total === 1 ? "event" : "events"}
              {p.time_range.start && (
                <>
                  {" "}
                  from {p.time_range.start} to {p.time_range.end}
                </>
              )}
            </p>
            <Export filter={applied} />
            <Paged
              items={p.events}
              nextCursor={p.next_cursor}
              paging={paging}
              empty="No events match this filter."
            >
              {(events) => <EventTable events={events} caption="Events, newest first" />}
            </Paged>
          </>
        )}
      </Fetched>

      {/* A filter the list refused is refused by the stats too: its problem is shown once, above. */}
      {!page.error && <Stats filter={applied} />}
    </section>
  );
}

function Export({ filter }: { filter: FilterValues }) {
  const { busy, problem, run } = useAction();
  const exportAs = (format: "ndjson" | "csv") =>
    run(() => download(`/api/v1/events/export${queryOf({ format, ...filter })}`, `events.${format}`));
  return (
    <div class="export">
      <button type="button" disabled={busy} onClick={() => exportAs("ndjson")}>
        Export NDJSON
      </button>
      <button type="button" disabled={busy} onClick={() => exportAs("csv")}>
        Export CSV
      </button>
      {problem && <ProblemView problem={problem} />}
    </div>
  );
}

const dimensions = ["type", "source", "day", "hour"] as const;

function Stats({ filter }: { filter: FilterValues }) {
  const [groupBy, setGroupBy] = useState<(typeof dimensions)[number]>("type");
  const stats = useApi<{ buckets: { key: string; count: number }[]; total: number }>(
    `/api/v1/events/stats${queryOf({ ...filter, group_by: groupBy })}`,
  );
  return (
    <section class="stats">
      <h2>Stats</h2>
      <div class="toolbar">
        <label for="group-by">Group by</label>
        <select
          id="group-by"
          value={groupBy}
          onChange={(e) => setGroupBy(e.currentTarget.value as (typeof dimensions)[number])}
        >
          {dimensions.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </div>
      <Fetched state={stats}>
        {(s) =>
          s.buckets.length === 0 ? (
            <Empty>No events match this filter.</Empty>
          ) : (
            <table>
              <caption>
                Events by {groupBy} (total {figure(s.total)})
              </caption>
              <thead>
                <tr>
                  <th scope="col">{groupBy}</th>
                  <th scope="col">Events</th>
                </tr>
              </thead>
              <tbody>
                {s.buckets.map((b) => (
                  <tr key={b.key}>
                    <th scope="row">{b.key}</th>
                    <td>{figure(b.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Fetched>
    </section>
  );
}
