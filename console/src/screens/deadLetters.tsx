import { useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import type { DeadLetterDetail as DeadLetterAnswer, DeadLetterView } from "../../../src/bus/deadLetters.js";
import { api, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { type FilterField, FilterForm, Paged, pageSize, useListFilter } from "../pager.js";
import { href } from "../paths.js";
import { Fetched, ProblemView, Time, useAction, useApi } from "../ui.js";
import type { SubscriptionItem } from "./subscriptions.js";

/** GET /api/v1/dead-letters (pending ones only, newest first) */
interface DeadLetterPage {
  dead_letters: DeadLetterView[];
  next_cursor: string | null;
}

/** GET /api/v1/dead-letters/{id}: pending or retried (`retried_at`, null until then). */
type DeadLetter = DeadLetterAnswer;

/** Subscriptions by id, for their names (the first 1000). */
function useSubscriptions() {
  const state = useApi<{ subscriptions: SubscriptionItem[] }>("/api/v1/subscriptions?limit=1000");
  const list = state.data?.subscriptions ?? [];
  const byId = new Map(list.map((s) => [s.id, s]));
  const nameOf = (id: string) => byId.get(id)?.name ?? id;
  return { list, byId, nameOf };
}

/** The Dead letters screen (`/dead-letters?subscription_id=&event_type=`) and one (`/dead-letters/{id}`). */
export function DeadLetters() {
  const { params } = useRoute();
  return params.id ? <DeadLetterDetail id={params.id} /> : <DeadLetterList />;
}

function DeadLetterList() {
  useTitle("Dead letters");
  const subscriptions = useSubscriptions();
  const filtered = useLocation().query.subscription_id ?? "";
  // The filters of GET /api/v1/dead-letters (and of its retry), both exact: a subscription by its name (an id
  // the list does not hold is offered as is) and an event type.
  const fields: FilterField[] = [
    {
      name: "subscription_id",
      label: "Subscription",
      options: [
        ...subscriptions.list.map((s) => ({ value: s.id, label: s.name })),
        ...(filtered && !subscriptions.byId.has(filtered) ? [filtered] : []),
      ],
    },
    { name: "event_type", label: "Event type", hint: "exact, such as order.placed" },
  ];
  const { applied, paging, form, draft, search } = useListFilter(fields, "/dead-letters");
  const page = useApi<DeadLetterPage>(
    `/api/v1/dead-letters${queryOf({ ...applied, limit: pageSize, cursor: paging.cursor })}`,
  );
  const { busy, problem, run } = useAction();
  const [retried, setRetried] = useState<number>();

  const retryAll = () => {
    setRetried(undefined);
    run(async () => {
      const answer = await api<{ retried: number }>("/api/v1/dead-letters/retry", {
        method: "POST",
        body: applied,
      });
      setRetried(answer.retried);
      page.reload();
    });
  };

  return (
    <section>
      <h1>Dead letters</h1>
      <p class="hint">
        Deliveries that used up their attempts. A retry sends one back to its subscription with fresh
        attempts; it then leaves this list.
      </p>
      <FilterForm
        label="Dead letter filters"
        submitLabel="Filter"
        {...form}
        onSubmit={() => {
          setRetried(undefined);
          search({ ...draft, event_type: (draft.event_type ?? "").trim() });
        }}
      />

      <Fetched state={page}>
        {(p) => (
          <>
            <div class="toolbar">
              <p class="total" aria-live="polite">
                <strong data-figure="dead_letters.shown">{p.dead_letters.length}</strong>{" "}
                {p.dead_letters.length === 1 ? "dead letter" : "dead letters"}
                {p.next_cursor || paging.hasPrevious ? " on this page" : ""}
              </p>
              <button type="button" disabled={busy || p.dead_letters.length === 0} onClick={retryAll}>
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
            <Paged
              items={p.dead_letters}
              nextCursor={p.next_cursor}
              paging={paging}
              empty="No dead letters match this filter."
            >
              {(deadLetters) => (
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
                    {deadLetters.map((d) => (
                      <tr key={d.id}>
                        <th scope="row">
                          <a href={href(`/dead-letters/${d.id}`)}>
                            <Time value={d.failed_at} />
                          </a>
                        </th>
                        <td>{d.event_type}</td>
                        <td>
                          <a href={href(`/subscriptions/${d.subscription_id}`)}>
                            {subscriptions.nameOf(d.subscription_id)}
                          </a>
                        </td>
                        <td>{d.attempts}</td>
                        <td>{d.last_error ?? "—"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Paged>
          </>
        )}
      </Fetched>
    </section>
  );
}

/** One dead letter (`GET /api/v1/dead-letters/{id}`), pending or retried; a pending one can be retried. */
function DeadLetterDetail({ id }: { id: string }) {
  useTitle("Dead letter");
  const state = useApi<DeadLetter>(`/api/v1/dead-letters/${id}`);
  const subscriptions = useSubscriptions();
  const { busy, problem, run } = useAction();

  const retry = () =>
    run(async () => {
      await api(`/api/v1/dead-letters/${id}/retry`, { method: "POST" });
      state.reload();
    });

  return (
    <section>
      <p>
        <a href={href("/dead-letters")}>All dead letters</a>
      </p>
      <h1>Dead letter</h1>
      <Fetched state={state}>
        {(d) => (
          <>
            {d.retried_at && (
              <output class="notice" data-figure="dead_letter.state">
                Retried at <Time value={d.retried_at} />: sent back to its subscription with fresh attempts.
                It is no longer a dead letter; the subscription's health shows the delivery.
              </output>
            )}
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{d.id}</code>
              </dd>
              <dt>Event type</dt>
              <dd>{d.event_type}</dd>
              <dt>Event</dt>
              <dd>
                <a href={href(`/events/${d.event_id}`)}>{d.event_id}</a>
              </dd>
              <dt>Subscription</dt>
              <dd>
                <a href={href(`/subscriptions/${d.subscription_id}`)}>
                  {subscriptions.nameOf(d.subscription_id)}
                </a>
              </dd>
              <dt>Failed at</dt>
              <dd>
                <Time value={d.failed_at} />
              </dd>
              <dt>Retried at</dt>
              <dd data-figure="dead_letter.retried_at">
                <Time value={d.retried_at} />
              </dd>
            </dl>
            <h2>Attempts</h2>
            <p>
              Attempts made: <span data-figure="dead_letter.attempts">{d.attempts}</span>. Last error:{" "}
              <span data-figure="dead_letter.last_error">{d.last_error ?? "—"}</span>
            </p>
            {d.attempt_errors.length === 0 ? (
              <p class="hint">No attempt's error was recorded (it failed before Herald kept each one).</p>
            ) : (
              <table class="attempts">
                <caption>Each failed attempt, oldest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Attempt</th>
                    <th scope="col">At</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {d.attempt_errors.map((a, at) => (
                    <tr key={`${at}-${a.at}`}>
                      <th scope="row">{a.attempt}</th>
                      <td>
                        <Time value={a.at} />
                      </td>
                      <td>{a.error}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {!d.retried_at && (
              <button type="button" disabled={busy} onClick={retry}>
                Retry
              </button>
            )}
            {problem && <ProblemView problem={problem} />}
          </>
        )}
      </Fetched>
    </section>
  );
}
