import { href } from "../paths.js";
import { Time } from "../ui.js";

/** An event as the API shows it (GET /api/v1/events and the timelines). */
export interface HeraldEvent {
  id: string;
  event_type: string;
  source: string;
  timestamp: string;
  created_at: string;
  contact_id: string | null;
  session_id: string | null;
  message_id: string | null;
  correlation_id: string | null;
  causation_id: string | null;
  payload: unknown;
  metadata: unknown;
}

/** A table of events, each linking to its detail, its contact's and its session's timeline. */
export function EventTable({ events, caption }: { events: HeraldEvent[]; caption: string }) {
  return (
    <table class="events">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Time (UTC)</th>
          <th scope="col">Event type</th>
          <th scope="col">Source</th>
          <th scope="col">Contact</th>
          <th scope="col">Session</th>
          <th scope="col">Event</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.id}>
            <td>
              <Time value={e.timestamp} />
            </td>
            <td>{e.event_type}</td>
            <td>{e.source}</td>
            <td>
              {e.contact_id ? (
                <a href={href(`/contacts/${encodeURIComponent(e.contact_id)}`)}>{e.contact_id}</a>
              ) : (
                "—"
              )}
            </td>
            <td>
              {e.session_id ? (
                <a href={href(`/sessions/${encodeURIComponent(e.session_id)}`)}>{e.session_id}</a>
              ) : (
                "—"
              )}
            </td>
            <td>
              <a href={href(`/events/${e.id}`)} aria-label={`Event ${e.id}`}>
                <code>…{e.id.slice(-12)}</code>
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
