import { useRoute } from "preact-iso";
import { queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { href } from "../paths.js";
import { Fetched, Time, useApi } from "../ui.js";
import { EventTable, type HeraldEvent } from "./eventList.js";

/** One event: its JSON, the message it belongs to, and the chain of events sharing its correlation id. */
export function EventDetail() {
  const { params } = useRoute();
  const id = params.id ?? "";
  useTitle(`Event ${id}`);
  const event = useApi<HeraldEvent>(`/api/v1/events/${encodeURIComponent(id)}`);
  return (
    <section>
      <p>
        <a href={href("/events")}>← Events</a>
      </p>
      <h1>Event</h1>
      <Fetched state={event}>
        {(e) => (
          <>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{e.id}</code>
              </dd>
              <dt>Event type</dt>
              <dd>{e.event_type}</dd>
              <dt>Source</dt>
              <dd>{e.source}</dd>
              <dt>Time</dt>
              <dd>
                <Time value={e.timestamp} />
              </dd>
              <dt>Stored</dt>
              <dd>
                <Time value={e.created_at} />
              </dd>
              <dt>Contact</dt>
              <dd>
                {e.contact_id ? (
                  <a href={href(`/contacts/${encodeURIComponent(e.contact_id)}`)}>{e.contact_id}</a>
                ) : (
                  "—"
                )}
              </dd>
              <dt>Session</dt>
              <dd>
                {e.session_id ? (
                  <a href={href(`/sessions/${encodeURIComponent(e.session_id)}`)}>{e.session_id}</a>
                ) : (
                  "—"
                )}
              </dd>
              <dt>Message</dt>
              <dd>{e.message_id ? <a href={href(`/messages/${e.message_id}`)}>{e.message_id}</a> : "—"}</dd>
              <dt>Correlation</dt>
              <dd>
                {e.correlation_id ? (
                  <a href={`${href("/events")}${queryOf({ correlation_id: e.correlation_id })}`}>
                    {e.correlation_id}
                  </a>
                ) : (
                  "—"
                )}
              </dd>
              <dt>Caused by</dt>
              <dd>
                {e.causation_id ? <a href={href(`/events/${e.causation_id}`)}>{e.causation_id}</a> : "—"}
              </dd>
            </dl>
            <h2>JSON</h2>
            <pre class="json">{JSON.stringify(e, null, 2)}</pre>
            {e.correlation_id && <Chain correlationId={e.correlation_id} />}
          </>
        )}
      </Fetched>
    </section>
  );
}

function Chain({ correlationId }: { correlationId: string }) {
  const chain = useApi<{ events: HeraldEvent[]; total: number }>(
    `/api/v1/events${queryOf({ correlation_id: correlationId, order: "asc", limit: 100 })}`,
  );
  return (
    <>
      <h2>Correlation chain</h2>
      <Fetched state={chain}>
        {(c) => (
          <>
            <p>
              {c.total} {c.total === 1 ? "event shares" : "events share"} this correlation id
              {c.total > c.events.length ? ` (the first ${c.events.length} shown)` : ""}.
            </p>
            <EventTable events={c.events} caption="Events of this correlation, oldest first" />
          </>
        )}
      </Fetched>
    </>
  );
}
