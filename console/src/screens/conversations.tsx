import { useLocation, useRoute } from "preact-iso";
import { channels } from "../../../src/domain/vocabularies.js";
import { queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { FilterForm, Paged, pageSize, useListFilter } from "../pager.js";
import { href } from "../paths.js";
import { Empty, Fetched, figure, Time, useApi } from "../ui.js";

interface Conversation {
  id: string;
  channel: string;
  participants: string[];
  last_activity_at: string;
  message_count: number;
  last_message_preview: string | null;
}

interface ConversationMessage {
  id: string;
  direction: "inbound" | "outbound";
  from: string | null;
  to: string;
  body: string | null;
  timestamp: string;
  thread_reason: string | null;
}

const fields = [
  { name: "channel", label: "Channel", options: channels },
  {
    name: "participant",
    label: "Participant",
    hint: "the outside party's address (needs a channel for SMS)",
  },
] as const;

export function Conversations() {
  useTitle("Conversations");
  const { applied, paging, form } = useListFilter(fields, "/conversations");
  const page = useApi<{ items: Conversation[]; next_cursor: string | null }>(
    `/api/v1/conversations${queryOf({ ...applied, limit: pageSize, cursor: paging.cursor })}`,
  );
  return (
    <section>
      <h1>Conversations</h1>
      <FilterForm label="Conversation filters" {...form} />
      <Fetched state={page}>
        {(p) => (
          <Paged
            items={p.items}
            nextCursor={p.next_cursor}
            paging={paging}
            empty="No conversations match this filter."
          >
            {(items) => (
              <table>
                <caption>Conversations, latest activity first</caption>
                <thead>
                  <tr>
                    <th scope="col">Participants</th>
                    <th scope="col">Channel</th>
                    <th scope="col">Messages</th>
                    <th scope="col">Last activity (UTC)</th>
                    <th scope="col">Last message</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((c) => (
                    <tr key={c.id}>
                      <th scope="row">
                        <a href={href(`/conversations/${c.id}`)}>{c.participants.join(", ")}</a>
                      </th>
                      <td>{c.channel}</td>
                      <td>{figure(c.message_count)}</td>
                      <td>
                        <Time value={c.last_activity_at} />
                      </td>
                      <td>{figure(c.last_message_preview)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Paged>
        )}
      </Fetched>
    </section>
  );
}

/** One conversation and its messages, oldest first, paged by number (`?page=`, the API's own paging). */
export function ConversationDetail() {
  const { params } = useRoute();
  const { query, route, path } = useLocation();
  const id = params.id ?? "";
  const page = Math.max(1, Number.parseInt(query.page ?? "1", 10) || 1);
  useTitle(`Conversation ${id}`);
  const conversation = useApi<Conversation>(`/api/v1/conversations/${encodeURIComponent(id)}`);
  const messages = useApi<{ items: ConversationMessage[]; page: number; page_size: number; total: number }>(
    `/api/v1/conversations/${encodeURIComponent(id)}/messages${queryOf({ page, page_size: pageSize })}`,
  );
  const goTo = (n: number) => route(`${path}${queryOf({ page: n === 1 ? undefined : n })}`);
  return (
    <section>
      <p>
        <a href={href("/conversations")}>← Conversations</a>
      </p>
      <h1>Conversation</h1>
      <Fetched state={conversation}>
        {(c) => (
          <dl class="facts">
            <dt>Participants</dt>
            <dd>{c.participants.join(", ")}</dd>
            <dt>Channel</dt>
            <dd>{c.channel}</dd>
            <dt>Messages</dt>
            <dd data-figure="conversation.message_count">{figure(c.message_count)}</dd>
            <dt>Last activity</dt>
            <dd>
              <Time value={c.last_activity_at} />
            </dd>
            <dt>Id</dt>
            <dd>
              <code>{c.id}</code>
            </dd>
          </dl>
        )}
      </Fetched>
      {!conversation.error && (
        <>
          <h2>Messages</h2>
          <Fetched state={messages}>
            {(m) => {
              const pages = Math.max(1, Math.ceil(m.total / m.page_size));
              return (
                <>
                  <p class="total">
                    <strong data-figure="conversation.total">{figure(m.total)}</strong>{" "}
                    {m.total === 1 ? "message" : "messages"}, page {m.page} of {pages}
                  </p>
                  {m.items.length === 0 ? (
                    <Empty>No messages on this page.</Empty>
                  ) : (
                    <table>
                      <caption>Messages of this conversation, oldest first</caption>
                      <thead>
                        <tr>
                          <th scope="col">Time (UTC)</th>
                          <th scope="col">Direction</th>
                          <th scope="col">From</th>
                          <th scope="col">To</th>
                          <th scope="col">Body</th>
                          <th scope="col">Threaded by</th>
                        </tr>
                      </thead>
                      <tbody>
                        {m.items.map((x) => (
                          <tr key={x.id}>
                            <td>
                              <Time value={x.timestamp} />
                            </td>
                            <td>
                              {x.direction === "outbound" ? (
                                <a href={href(`/messages/${x.id}`)}>outbound</a>
                              ) : (
                                "inbound"
                              )}
                            </td>
                            <td>{figure(x.from)}</td>
                            <td>{x.to}</td>
                            <td>{figure(x.body)}</td>
                            <td>{figure(x.thread_reason)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  )}
                  <div class="pager">
                    <button type="button" disabled={m.page <= 1} onClick={() => goTo(m.page - 1)}>
                      Previous
                    </button>
                    <button type="button" disabled={m.page >= pages} onClick={() => goTo(m.page + 1)}>
                      Next
                    </button>
                  </div>
                </>
              );
            }}
          </Fetched>
        </>
      )}
    </section>
  );
}
