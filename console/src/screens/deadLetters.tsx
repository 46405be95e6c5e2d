import { useEffect, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { api, type Problem, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { href } from "../paths.js";
import { Empty, Fetched, ProblemView, problemOf, Time, useApi } from "../ui.js";
import type { SubscriptionItem } from "./subscriptions.js";

/** GET /api/v1/dead-letters (one of its items) */
interface DeadLetter {
  id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  attempts: number;
  last_error: string | null;
  failed_at: string;
}

interface DeadLetterPage {
  dead_letters: DeadLetter[];
  next_cursor: string | null;
}

/**
 * GET /api/v1/dead-letters filters by subscription only (its retry takes an event type too), so the event
 * type is applied here to the newest `scanLimit` dead letters of the subscription filter.
 */
const scanLimit = 1000;

/** Subscriptions by id, for their names (the first 1000). */
function useSubscriptions() {
  const state = useApi<{ subscriptions: SubscriptionItem[] }>("/api/v1/subscriptions?limit=1000");
  const byId = new Map((state.data?.subscriptions ?? []).map((s) => [s.id, s]));
  return { list: state.data?.subscriptions ?? [], byId };
}

/** The Dead letters screen (`/dead-letters?subscription_id=&event_type=`) and one (`/dead-letters/{id}`). */
export function DeadLetters() {
  const { params } = useRoute();
  return params.id ? <DeadLetterDetail id={params.id} /> : <DeadLetterList />;
}

function DeadLetterList() {
  useTitle("Dead letters");
  const { query, route } = useLocation();
  const subscriptionId = query.subscription_id ?? "";
  const eventType = query.event_type ?? "";
  const [draft, setDraft] = useState({ subscriptionId, eventType });
  useEffect(() => setDraft({ subscriptionId, eventType }), [subscriptionId, eventType]);
  const subscriptions = useSubscriptions();
  const page = useApi<DeadLetterPage>(
    `/api/v1/dead-letters${queryOf({ subscription_id: subscriptionId, limit: scanLimit })}`,
  );
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const [retried, setRetried] = useState<number>();

  const submit = (event: Event) => {
    event.preventDefault();
    setRetried(undefined);
    route(
      `${href("/dead-letters")}${queryOf({ subscription_id: draft.subscriptionId, event_type: draft.eventType.trim() })}`,
    );
  };

  const retryAll = async () => {
    setBusy(true);
    setProblem(undefined);
    setRetried(undefined);
    try {
      const answer = await api<{ retried: number }>("/api/v1/dead-letters/retry", {
        method: "POST",
        body: {
          ...(subscriptionId ? { subscription_id: subscriptionId } : {}),
          ...(eventType ? { event_type: eventType } : {}),
        },
      });
      setRetried(answer.retried);
      page.reload();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>Dead letters</h1>
      <p class="hint">
        Deliveries that used up their attempts. A retry sends one back to its subscription with fresh
        attempts; it then leaves this list.
      </p>
      <form class="filters" onSubmit={submit} aria-label="Dead letter filters">
        <div class="field">
          <label for="dl-subscription">Subscription</label>
          <select
            id="dl-subscription"
            value={draft.subscriptionId}
            onChange={(e) => setDraft({ ...draft, subscriptionId: e.currentTarget.value })}
          >
            <option value="">Any</option>
            {subscriptions.list.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
            {subscriptionId && !subscriptions.byId.has(subscriptionId) && (
              <option value={subscriptionId}>{subscriptionId}</option>
            )}
          </select>
        </div>
        <div class="field">
          <label for="dl-type">Event type</label>
          <input
            id="dl-type"
            value={draft.eventType}
            aria-describedby="dl-type-hint"
            onInput={(e) => setDraft({ ...draft, eventType: e.currentTarget.value })}
          />
          <small id="dl-type-hint" class="hint">
            exact, such as order.placed
          </small>
        </div>
        <div class="actions">
          <button type="submit">Filter</button>
          <a href={href("/dead-letters")}>Clear</a>
        </div>
      </form>

      <Fetched state={page}>
        {(p) => {
          const shown = eventType ? p.dead_letters.filter((d) => d.event_type === eventType) : p.dead_letters;
          return (
            <>
              <div class="toolbar">
                <p class="total" aria-live="polite">
                  <strong data-figure="dead_letters.shown">{shown.length}</strong>{" "}
                  {shown.length === 1 ? "dead letter" : "dead letters"}
                  {p.next_cursor ? ` among the newest ${scanLimit}` : ""}
                </p>
                <button type="button" disabled={busy || shown.length === 0} onClick={retryAll}>
                  Retry all matching
                </button>
              </div>
              {problem && <ProblemView problem={problem} />}
              {retried !== undefined && (
                <output class="notice" data-figure="dead_letters.retried">
                  Retried {retried} {retried === 1 ? "dead letter" : "dead letters"}: sent back to their
                  subscriptions.
                </output>
              )}
              {shown.length === 0 ? (
                <Empty>No dead letters match this filter.</Empty>
              ) : (
                <table class="dead-letters">
                  <caption>Dead letters, newest first</caption>
                  <thead>
                    <tr>
                      <th scope="col">Failed at</th>
                      <th scope="col">Event type</th>
                      <th scope="col">Subscription</th>
                      <th scope="col">Attempts</th>
                      <th scope="col">Last error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {shown.map((d) => (
                      <tr key={d.id}>
                        <th scope="row">
                          <a href={href(`/dead-letters/${d.id}`)}>
                            <Time value={d.failed_at} />
                          </a>
                        </th>
                        <td>{d.event_type}</td>
                        <td>
                          <a href={href(`/subscriptions/${d.subscription_id}`)}>
                            {subscriptions.byId.get(d.subscription_id)?.name ?? d.subscription_id}
                          </a>
                        </td>
                        <td>{d.attempts}</td>
                        <td>{d.last_error ?? "—"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          );
        }}
      </Fetched>
    </section>
  );
}

/**
 * The API has no `GET /dead-letters/{id}`: the dead letter is found among the newest pending ones. A retried
 * one leaves that list (it is kept, marked retried, but not listed).
 */
function DeadLetterDetail({ id }: { id: string }) {
  useTitle("Dead letter");
  const page = useApi<DeadLetterPage>(`/api/v1/dead-letters${queryOf({ limit: scanLimit })}`);
  const subscriptions = useSubscriptions();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const [retried, setRetried] = useState<DeadLetter>();

  const retry = async (d: DeadLetter) => {
    setBusy(true);
    setProblem(undefined);
    try {
      await api(`/api/v1/dead-letters/${d.id}/retry`, { method: "POST" });
      setRetried(d);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };

  const found = retried ?? page.data?.dead_letters.find((d) => d.id === id);
  return (
    <section>
      <p>
        <a href={href("/dead-letters")}>All dead letters</a>
      </p>
      <h1>Dead letter</h1>
      {retried && (
        <output class="notice" data-figure="dead_letter.state">
          Retried: sent back to its subscription with fresh attempts. It is no longer a dead letter; the
          subscription's health shows the delivery.
        </output>
      )}
      <Fetched state={page}>
        {() =>
          !found ? (
            <Empty>
              No pending dead letter has this id: it was retried already, or it does not exist
              {page.data?.next_cursor ? ` (only the newest ${scanLimit} are searched)` : ""}.
            </Empty>
          ) : (
            <>
              <dl class="facts">
                <dt>Id</dt>
                <dd>
                  <code>{found.id}</code>
                </dd>
                <dt>Event type</dt>
                <dd>{found.event_type}</dd>
                <dt>Event</dt>
                <dd>
                  <a href={href(`/events/${found.event_id}`)}>{found.event_id}</a>
                </dd>
                <dt>Subscription</dt>
                <dd>
                  <a href={href(`/subscriptions/${found.subscription_id}`)}>
                    {subscriptions.byId.get(found.subscription_id)?.name ?? found.subscription_id}
                  </a>
                </dd>
                <dt>Failed at</dt>
                <dd>
                  <Time value={found.failed_at} />
                </dd>
              </dl>
              <h2>Attempts</h2>
              <p class="hint">
                Herald keeps each delivery's attempt count and its last error, not every attempt's own error.
              </p>
              <table>
                <caption>Delivery attempts</caption>
                <thead>
                  <tr>
                    <th scope="col">Attempts made</th>
                    <th scope="col">Last error</th>
                  </tr>
                </thead>
                <tbody>
                  <tr>
                    <th scope="row" data-figure="dead_letter.attempts">
                      {found.attempts}
                    </th>
                    <td data-figure="dead_letter.last_error">{found.last_error ?? "—"}</td>
                  </tr>
                </tbody>
              </table>
              {!retried && (
                <button type="button" disabled={busy} onClick={() => retry(found)}>
                  Retry
                </button>
              )}
              {problem && <ProblemView problem={problem} />}
            </>
          )
        }
      </Fetched>
    </section>
  );
}
