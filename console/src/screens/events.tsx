import { useEffect, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { download, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { href } from "../paths.js";
import { Empty, Fetched, figure, ProblemView, problemOf, useApi } from "../ui.js";
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
type FilterName = (typeof filters)[number]["name"];
type FilterValues = Partial<Record<FilterName, string>>;

const pageSize = 50;

interface EventPage {
  events: HeraldEvent[];
  total: number;
  time_range: { start: string | null; end: string | null };
  next_cursor: string | null;
}

const filterOf = (query: Record<string, string>): FilterValues =>
  Object.fromEntries(filters.map((f) => [f.name, query[f.name] ?? ""]).filter(([, v]) => v !== ""));

export function Events() {
  useTitle("Events");
  const { query, route } = useLocation();
  const applied = filterOf(query);
  const appliedQuery = queryOf(applied);
  const [draft, setDraft] = useState<FilterValues>(applied);
  // The cursors of the pages before the one shown (Previous pops one); reset when the filter changes.
  const [cursors, setCursors] = useState<string[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  useEffect(() => {
    setDraft(filterOf(query));
    setCursors([]);
    setCursor(undefined);
  }, [appliedQuery]);

  const page = useApi<EventPage>(`/api/v1/events${queryOf({ ...applied, limit: pageSize, cursor })}`);

  const submit = (event: Event) => {
    event.preventDefault();
    route(`${href("/events")}${queryOf(draft)}`);
  };

  return (
    <section>
      <h1>Events</h1>
      <form class="filters" onSubmit={submit} aria-label="Event filters">
        {filters.map((f) => (
          <div class="field" key={f.name}>
            <label for={`filter-${f.name}`}>{f.label}</label>
            {"options" in f ? (
              <select
                id={`filter-${f.name}`}
                value={draft[f.name] ?? ""}
                onChange={(e) => setDraft({ ...draft, [f.name]: e.currentTarget.value })}
              >
                <option value="">Any</option>
                {f.options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={`filter-${f.name}`}
                value={draft[f.name] ?? ""}
                onInput={(e) => setDraft({ ...draft, [f.name]: e.currentTarget.value })}
                aria-describedby={"hint" in f ? `hint-${f.name}` : undefined}
              />
            )}
            {"hint" in f && (
              <small id={`hint-${f.name}`} class="hint">
                {f.hint}
              </small>
            )}
          </div>
        ))}
        <div class="actions">
          <button type="submit">Search</button>
          <a href={href("/events")}>Clear</a>
        </div>
      </form>

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
            {p.events.length === 0 ? (
              <Empty>No events match this filter.</Empty>
            ) : (
              <EventTable events={p.events} caption="Events, newest first" />
            )}
            <div class="pager">
              <button
                type="button"
                disabled={cursors.length === 0 && cursor === undefined}
                onClick={() => {
                  setCursor(cursors.at(-1));
                  setCursors(cursors.slice(0, -1));
                }}
              >
                Previous
              </button>
              <button
                type="button"
                disabled={!p.next_cursor}
                onClick={() => {
                  if (cursor !== undefined) setCursors([...cursors, cursor]);
                  else setCursors([]);
                  setCursor(p.next_cursor ?? undefined);
                }}
              >
                Next
              </button>
            </div>
          </>
        )}
      </Fetched>

      {/* A filter the list refused is refused by the stats too: its problem is shown once, above. */}
      {!page.error && <Stats filter={applied} />}
    </section>
  );
}

function Export({ filter }: { filter: FilterValues }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async (format: "ndjson" | "csv") => {
    setBusy(true);
    setError(undefined);
    try {
      await download(`/api/v1/events/export${queryOf({ format, ...filter })}`, `events.${format}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="export">
      <button type="button" disabled={busy} onClick={() => run("ndjson")}>
        Export NDJSON
      </button>
      <button type="button" disabled={busy} onClick={() => run("csv")}>
        Export CSV
      </button>
      {error !== undefined && <ProblemView problem={problemOf(error)} />}
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
