import { useRoute } from "preact-iso";
import {
  type CanonicalEventType,
  replacesStatus,
  type StatusPoint,
  statusOfEvent,
} from "../../../src/domain/messageStatus.js";
import { channels, type MessageStatus, messageStatuses } from "../../../src/domain/vocabularies.js";
import { queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { FilterForm, Paged, pageSize, useListFilter } from "../pager.js";
import { href } from "../paths.js";
import { Empty, Fetched, figure, Time, useApi } from "../ui.js";
import { type Suppression, SuppressionTable } from "./suppressions.js";

/** An outbound message as the API shows it (GET /api/v1/messages). */
export interface Message {
  id: string;
  channel: string;
  provider: string;
  provider_message_id: string | null;
  to: string;
  from: string | null;
  subject: string | null;
  email_message_id: string | null;
  status: MessageStatus;
  status_at: string;
  contact_id: string | null;
  campaign_id: string | null;
  metadata: unknown;
  sent_at: string;
  created_at: string;
}

interface ProviderEvent {
  id: string;
  provider: string;
  type: string;
  provider_type: string | null;
  event_at: string;
  recipient: string | null;
  url: string | null;
  reason: string | null;
  bounce_classification: string | null;
  payload: unknown;
}

/** The filters of GET /api/v1/messages, by their query parameter. */
const fields = [
  { name: "to", label: "Recipient", hint: "an email address or a phone number (+1 415 555 0100)" },
  { name: "channel", label: "Channel", options: channels },
  { name: "status", label: "Status", options: messageStatuses },
  { name: "campaign_id", label: "Campaign", hint: "a campaign's id" },
  { name: "contact_id", label: "Contact" },
] as const;

/** `/messages` (the search) and `/messages/{id}` (one message). */
export function Messages() {
  const { params } = useRoute();
  return params.id ? <MessageDetail id={params.id} /> : <MessageList />;
}

function MessageList() {
  useTitle("Messages");
  const { applied, paging, form } = useListFilter(fields, "/messages");
  const page = useApi<{ messages: Message[]; next_cursor: string | null }>(
    `/api/v1/messages${queryOf({ ...applied, limit: pageSize, cursor: paging.cursor })}`,
  );
  return (
    <section>
      <h1>Messages</h1>
      <FilterForm label="Message filters" {...form} />
      <Fetched state={page}>
        {(p) => (
          <Paged
            items={p.messages}
            nextCursor={p.next_cursor}
            paging={paging}
            empty="No messages match this filter."
          >
            {(messages) => <MessageTable messages={messages} caption="Messages, newest first" />}
          </Paged>
        )}
      </Fetched>
    </section>
  );
}

function MessageTable({ messages, caption }: { messages: Message[]; caption: string }) {
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Sent (UTC)</th>
          <th scope="col">Recipient</th>
          <th scope="col">Channel</th>
          <th scope="col">Provider</th>
          <th scope="col">Status</th>
          <th scope="col">Subject</th>
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody>
        {messages.map((m) => (
          <tr key={m.id}>
            <td>
              <Time value={m.sent_at} />
            </td>
            <td>{m.to}</td>
            <td>{m.channel}</td>
            <td>{m.provider}</td>
            <td data-status={m.status}>{m.status}</td>
            <td>{figure(m.subject)}</td>
            <td>
              <a href={href(`/messages/${m.id}`)} aria-label={`Message to ${m.to}, ${m.id}`}>
                <code>…{m.id.slice(-12)}</code>
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface Transition {
  event: ProviderEvent;
  before: MessageStatus;
  after: MessageStatus;
  proposed: MessageStatus | null;
}

/**
 * The message's status as each of its events arrived, by Herald's rule (src/domain/messageStatus.ts): it starts
 * `sent` when registered, and an event's status replaces the current one when it is stronger.
 */
function transitionsOf(message: Message, events: ProviderEvent[]): Transition[] {
  let current: StatusPoint = { status: "sent", at: new Date(message.sent_at) };
  return events.map((event) => {
    const proposed = statusOfEvent[event.type as CanonicalEventType] ?? null;
    const before = current.status;
    if (proposed) {
      const next = { status: proposed, at: new Date(event.event_at) };
      if (replacesStatus(current, next)) current = next;
    }
    return { event, before, after: current.status, proposed };
  });
}

function MessageDetail({ id }: { id: string }) {
  useTitle(`Message ${id}`);
  const message = useApi<Message>(`/api/v1/messages/${encodeURIComponent(id)}`);
  return (
    <section>
      <p>
        <a href={href("/messages")}>← Messages</a>
      </p>
      <h1>Message</h1>
      <Fetched state={message}>
        {(m) => (
          <>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{m.id}</code>
              </dd>
              <dt>Recipient</dt>
              <dd>{m.to}</dd>
              <dt>From</dt>
              <dd>{figure(m.from)}</dd>
              <dt>Channel</dt>
              <dd>{m.channel}</dd>
              <dt>Provider</dt>
              <dd>
                {m.provider} {m.provider_message_id && <code>{m.provider_message_id}</code>}
              </dd>
              <dt>Subject</dt>
              <dd>{figure(m.subject)}</dd>
              <dt>Status</dt>
              <dd data-figure="message.status">
                {m.status} (since <Time value={m.status_at} />)
              </dd>
              <dt>Sent</dt>
              <dd>
                <Time value={m.sent_at} />
              </dd>
              <dt>Contact</dt>
              <dd>
                {m.contact_id ? (
                  <a href={href(`/contacts/${encodeURIComponent(m.contact_id)}`)}>{m.contact_id}</a>
                ) : (
                  "—"
                )}
              </dd>
              <dt>Campaign</dt>
              <dd>
                {m.campaign_id ? (
                  <a href={`${href("/messages")}${queryOf({ campaign_id: m.campaign_id })}`}>
                    {m.campaign_id}
                  </a>
                ) : (
                  "—"
                )}
              </dd>
              <dt>Log events</dt>
              <dd>
                <a href={`${href("/events")}${queryOf({ message_id: m.id })}`}>Events of this message</a>
              </dd>
            </dl>
            <ProviderEvents message={m} />
            <RecipientSuppressions message={m} />
          </>
        )}
      </Fetched>
    </section>
  );
}

function ProviderEvents({ message }: { message: Message }) {
  const events = useApi<{ events: ProviderEvent[] }>(`/api/v1/messages/${message.id}/events`);
  return (
    <>
      <h2>Provider events</h2>
      <Fetched state={events}>
        {({ events }) => {
          if (events.length === 0) return <Empty>No provider event has arrived for this message.</Empty>;
          const transitions = transitionsOf(message, events);
          const derived = transitions.at(-1)?.after;
          return (
            <>
              <table class="provider-events">
                <caption>Provider events, in the order they happened, with the status each left</caption>
                <thead>
                  <tr>
                    <th scope="col">Time (UTC)</th>
                    <th scope="col">Event type</th>
                    <th scope="col">Provider's type</th>
                    <th scope="col">Status</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Provider's event</th>
                  </tr>
                </thead>
                <tbody>
                  {transitions.map(({ event: e, before, after, proposed }) => (
                    <tr key={e.id}>
                      <td>
                        <Time value={e.event_at} />
                      </td>
                      <td>{e.type}</td>
                      <td>{figure(e.provider_type)}</td>
                      <td data-transition={`${before}→${after}`}>
                        {before === after ? (
                          <>
                            {after}{" "}
                            <span class="hint">
                              (unchanged{proposed && proposed !== after ? `: ${proposed} is weaker` : ""})
                            </span>
                          </>
                        ) : (
                          <>
                            {before} → <strong>{after}</strong>
                          </>
                        )}
                      </td>
                      <td>{figure(e.reason ?? e.bounce_classification)}</td>
                      <td>
                        <details>
                          <summary>JSON</summary>
                          <pre class="json">{JSON.stringify(e.payload, null, 2)}</pre>
                        </details>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {derived !== message.status && (
                <p class="hint">
                  The message's status is {message.status}: it was set otherwise than by these events alone.
                </p>
              )}
            </>
          );
        }}
      </Fetched>
    </>
  );
}

function RecipientSuppressions({ message }: { message: Message }) {
  const list = useApi<{ suppressions: Suppression[] }>(
    `/api/v1/suppressions${queryOf({ channel: message.channel, address: message.to, limit: 100 })}`,
  );
  return (
    <>
      <h2>Suppressions of {message.to}</h2>
      <Fetched state={list}>
        {({ suppressions }) =>
          suppressions.length === 0 ? (
            <Empty>{message.to} is not suppressed.</Empty>
          ) : (
            <SuppressionTable suppressions={suppressions} caption={`Suppressions of ${message.to}`} />
          )
        }
      </Fetched>
      <p>
        <a href={`${href("/suppressions")}${queryOf({ address: message.to, channel: message.channel })}`}>
          Manage the suppressions of {message.to}
        </a>
      </p>
    </>
  );
}
