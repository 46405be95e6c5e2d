import { useEffect, useState } from "preact/hooks";
import { useRoute } from "preact-iso";
import { api, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { href } from "../paths.js";
import { Empty, Fetched, figure, ProblemView, problemOf, useApi } from "../ui.js";
import { EventTable, type HeraldEvent } from "./eventList.js";

interface TimelinePage {
  events: HeraldEvent[];
  next_cursor: string | null;
}

/** A contact's or a session's events, oldest first, with their exact count and "Load more". */
function Timeline({ kind }: { kind: "contact" | "session" }) {
  const { params } = useRoute();
  const id = params.id ?? "";
  const title = `${kind === "contact" ? "Contact" : "Session"} ${id}`;
  useTitle(title);
  const path = `/api/v1/${kind}s/${encodeURIComponent(id)}/events`;
  const first = useApi<TimelinePage>(`${path}?limit=100`);
  const count = useApi<{ count: number }>(`/api/v1/events/count${queryOf({ [`${kind}_id`]: id })}`);
  const [more, setMore] = useState<TimelinePage[]>([]);
  const [error, setError] = useState<unknown>();
  useEffect(() => setMore([]), [id]);
  const next = more.at(-1)?.next_cursor ?? first.data?.next_cursor;
  const loadMore = async () => {
    try {
      setMore([...more, await api<TimelinePage>(`${path}${queryOf({ limit: 100, cursor: next })}`)]);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section>
      <p>
        <a href={href("/events")}>← Events</a>
      </p>
      <h1>{title}</h1>
      <p>
        <a href={`${href("/events")}${queryOf({ [`${kind}_id`]: id })}`}>
          Filter the event list by this {kind}
        </a>
      </p>
      <Fetched state={count}>
        {(c) => (
          <p>
            <span data-figure="timeline.count">{figure(c.count)}</span> {c.count === 1 ? "event" : "events"}
          </p>
        )}
      </Fetched>
      <Fetched state={first}>
        {(p) =>
          p.events.length === 0 ? (
            <Empty>No events for this {kind}.</Empty>
          ) : (
            <>
              <EventTable
                events={[...p.events, ...more.flatMap((m) => m.events)]}
                caption="Timeline, oldest first"
              />
              {next && (
                <button type="button" onClick={loadMore}>
                  Load more
                </button>
              )}
            </>
          )
        }
      </Fetched>
      {error !== undefined && <ProblemView problem={problemOf(error)} />}
    </section>
  );
}

export const ContactTimeline = () => <Timeline kind="contact" />;
export const SessionTimeline = () => <Timeline kind="session" />;
