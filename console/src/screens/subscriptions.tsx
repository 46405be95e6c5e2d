import { useEffect, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import type { SubscriptionHealth } from "../../../src/bus/stats.js";
import { api, type Problem, queryOf } from "../api.js";
import { Confirm } from "../confirm.js";
import { useTitle } from "../layout.js";
import { Paged, pageSize, useCursor } from "../pager.js";
import { href } from "../paths.js";
import { Fetched, figure, ProblemView, TextField, Time, useAction, useApi } from "../ui.js";

/** GET /api/v1/subscriptions (one of its items) */
export interface SubscriptionItem {
  id: string;
  name: string;
  event_types: string[];
  sink: Record<string, string>;
  ordered: boolean;
  max_attempts: number;
  paused: boolean;
  created_at: string;
}

/** GET /api/v1/subscriptions/{id}: the subscription and how its endpoint did over the last hour. */
type SubscriptionDetail = SubscriptionItem & { health: SubscriptionHealth };

interface SubscriptionPage {
  subscriptions: SubscriptionItem[];
  next_cursor: string | null;
}

const healthRefreshMs = 5000;

/** The sink as one line: a webhook's URL or a NATS subject. */
export const sinkText = (sink: Record<string, string>) =>
  sink.type === "webhook" ? (sink.url ?? "") : `NATS ${sink.subject ?? ""}`;

/** Event types typed comma- or space-separated. */
const eventTypesOf = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t !== "");

const percent = (rate: number | null) => (rate === null ? "—" : `${(rate * 100).toFixed(1)} %`);

/** The Subscriptions screen (`/subscriptions`) and one subscription (`/subscriptions/{id}`). */
export function Subscriptions() {
  const { params } = useRoute();
  return params.id ? <Subscription id={params.id} /> : <SubscriptionList />;
}

function SubscriptionList() {
  useTitle("Subscriptions");
  const paging = useCursor("");
  const page = useApi<SubscriptionPage>(
    `/api/v1/subscriptions${queryOf({ limit: pageSize, cursor: paging.cursor })}`,
  );

  return (
    <section>
      <h1>Subscriptions</h1>
      <p class="hint">
        Which event types go to which endpoint. Health is over the last hour and refreshed every{" "}
        {healthRefreshMs / 1000} s.
      </p>
      <Fetched state={page}>
        {(p) => (
          <Paged
            items={p.subscriptions}
            nextCursor={p.next_cursor}
            paging={paging}
            empty="No subscriptions yet: create one below."
          >
            {(subscriptions) => (
              <table class="subscriptions">
                <caption>Subscriptions, newest first, with their endpoint's health</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Event types</th>
                    <th scope="col">Endpoint</th>
                    <th scope="col">State</th>
                    <th scope="col">Success rate</th>
                    <th scope="col">Last delivered</th>
                    <th scope="col">Latency p95 (ms)</th>
                    <th scope="col">Last error</th>
                  </tr>
                </thead>
                <tbody>
                  {subscriptions.map((s) => (
                    <tr key={s.id}>
                      <th scope="row">
                        <a href={href(`/subscriptions/${s.id}`)}>{s.name}</a>
                      </th>
                      <td>{s.event_types.join(", ")}</td>
                      <td>
                        <code>{sinkText(s.sink)}</code>
                      </td>
                      <td>{s.paused ? "Paused" : "Active"}</td>
                      <HealthCells id={s.id} />
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Paged>
        )}
      </Fetched>
      <CreateSubscription onCreated={page.reload} />
    </section>
  );
}

/** The list has no health: each row asks for its subscription (GET /api/v1/subscriptions/{id}). */
function HealthCells({ id }: { id: string }) {
  const state = useApi<SubscriptionDetail>(`/api/v1/subscriptions/${id}`, { refreshMs: healthRefreshMs });
  const h = state.data?.health;
  if (!h)
    return (
      <td colSpan={4} class="hint">
        {state.error ? state.error.title : "Loading…"}
      </td>
    );
  return (
    <>
      <td>{percent(h.success_rate)}</td>
      <td>
        <Time value={h.last_delivered_at} />
      </td>
      <td>{figure(h.latency_ms.p95)}</td>
      <td>{h.last_error ? h.last_error.message : "—"}</td>
    </>
  );
}

/** A refusal of the webhook's URL (the SSRF rule, or not an http(s) URL) is explained, not only shown. */
const urlRefused = (problem: Problem) => problem.errors?.some((e) => e.path === "/body/sink/url") ?? false;

function CreateSubscription({ onCreated }: { onCreated: () => void }) {
  const empty = { name: "", eventTypes: "", url: "", ordered: false, maxAttempts: "" };
  const [draft, setDraft] = useState(empty);
  const { busy, problem, run } = useAction();
  const [created, setCreated] = useState<{ id: string; name: string; secret: string }>();

  const submit = (event: Event) => {
    event.preventDefault();
    setCreated(undefined);
    run(async () => {
      const answer = await api<SubscriptionItem & { secret: string }>("/api/v1/subscriptions", {
        method: "POST",
        body: {
          name: draft.name.trim(),
          event_types: eventTypesOf(draft.eventTypes),
          sink: { type: "webhook", url: draft.url.trim() },
          ordered: draft.ordered,
          ...(draft.maxAttempts.trim() === "" ? {} : { max_attempts: Number(draft.maxAttempts) }),
        },
      });
      setCreated({ id: answer.id, name: answer.name, secret: answer.secret });
      setDraft(empty);
      onCreated();
    });
  };

  return (
    <section aria-labelledby="create-subscription">
      <h2 id="create-subscription">Create a subscription</h2>
      <form class="filters" onSubmit={submit} aria-label="New subscription">
        <TextField
          id="sub-name"
          label="Name"
          required
          value={draft.name}
          onInput={(value) => setDraft({ ...draft, name: value })}
        />
        <TextField
          id="sub-types"
          label="Event types"
          hint="comma-separated; a prefix such as message.* matches a family"
          required
          value={draft.eventTypes}
          onInput={(value) => setDraft({ ...draft, eventTypes: value })}
        />
        <TextField
          id="sub-url"
          label="Webhook URL"
          hint="http or https, reaching a public address"
          type="url"
          required
          value={draft.url}
          onInput={(value) => setDraft({ ...draft, url: value })}
        />
        <TextField
          id="sub-attempts"
          label="Max attempts"
          hint="before a delivery becomes a dead letter; empty: Herald's default"
          type="number"
          min={1}
          max={100}
          value={draft.maxAttempts}
          onInput={(value) => setDraft({ ...draft, maxAttempts: value })}
        />
        <div class="field">
          <span>
            <input
              id="sub-ordered"
              type="checkbox"
              checked={draft.ordered}
              onChange={(e) => setDraft({ ...draft, ordered: e.currentTarget.checked })}
            />{" "}
            <label for="sub-ordered">Ordered</label>
          </span>
          <small class="hint">events with the same key are delivered in order</small>
        </div>
        <div class="actions">
          <button type="submit" disabled={busy}>
            Create subscription
          </button>
        </div>
      </form>
      {problem && (
        <>
          <ProblemView problem={problem} />
          {urlRefused(problem) && (
            <p class="notice" data-testid="ssrf-rule">
              Herald delivers webhooks only to public addresses: URLs naming a loopback, private, link-local
              (cloud metadata), unique-local, CGNAT or multicast address are refused, so that a subscription
              cannot reach inside the network Herald runs in. An operator can allow such a network by listing
              it in <code>HERALD_WEBHOOK_ALLOWED_NETWORKS</code> (CIDRs, e.g. <code>10.20.0.0/16</code>).
            </p>
          )}
        </>
      )}
      {created && (
        <output class="notice">
          Created <a href={href(`/subscriptions/${created.id}`)}>{created.name}</a>. Its signing secret, shown
          once: <code>{created.secret}</code>
        </output>
      )}
    </section>
  );
}

function Subscription({ id }: { id: string }) {
  const state = useApi<SubscriptionDetail>(`/api/v1/subscriptions/${id}`, { refreshMs: healthRefreshMs });
  useTitle(state.data ? `Subscription ${state.data.name}` : "Subscription");
  return (
    <section>
      <p>
        <a href={href("/subscriptions")}>All subscriptions</a>
      </p>
      <h1>Subscription {state.data?.name ?? ""}</h1>
      <Fetched state={state}>{(s) => <SubscriptionView subscription={s} reload={state.reload} />}</Fetched>
    </section>
  );
}

function SubscriptionView({
  subscription: s,
  reload,
}: {
  subscription: SubscriptionDetail;
  reload: () => void;
}) {
  const { route } = useLocation();
  const { busy, problem, run } = useAction();
  const [confirming, setConfirming] = useState(false);
  const h = s.health;

  const act = (work: () => Promise<unknown>, then: () => void = reload) =>
    run(async () => {
      await work();
      then();
    });

  return (
    <>
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code>{s.id}</code>
        </dd>
        <dt>Event types</dt>
        <dd>{s.event_types.join(", ")}</dd>
        <dt>Endpoint</dt>
        <dd>
          <code>{sinkText(s.sink)}</code>
        </dd>
        <dt>Ordered</dt>
        <dd>{s.ordered ? "Yes" : "No"}</dd>
        <dt>Max attempts</dt>
        <dd>{s.max_attempts}</dd>
        <dt>State</dt>
        <dd data-figure="subscription.state">{s.paused ? "Paused" : "Active"}</dd>
        <dt>Created</dt>
        <dd>
          <Time value={s.created_at} />
        </dd>
      </dl>

      <div class="inline">
        <h2>Actions</h2>
        {s.paused ? (
          <button
            type="button"
            disabled={busy}
            onClick={() => act(() => api(`/api/v1/subscriptions/${s.id}/resume`, { method: "POST" }))}
          >
            Resume
          </button>
        ) : (
          <button
            type="button"
            disabled={busy}
            onClick={() => act(() => api(`/api/v1/subscriptions/${s.id}/pause`, { method: "POST" }))}
          >
            Pause
          </button>
        )}
        <a href={`${href("/dead-letters")}${queryOf({ subscription_id: s.id })}`}>Its dead letters</a>
        <Confirm
          open={confirming}
          onOpen={() => setConfirming(true)}
          onKeep={() => setConfirming(false)}
          onConfirm={() =>
            act(
              () => api(`/api/v1/subscriptions/${s.id}`, { method: "DELETE" }),
              () => route(href("/subscriptions")),
            )
          }
          ask="Delete"
          askClass="danger"
          question={`Delete “${s.name}”? Its pending deliveries are dropped; this cannot be undone.`}
          confirm="Confirm delete"
          keep="Cancel"
          busy={busy}
        />
      </div>
      {problem && <ProblemView problem={problem} />}

      <h2>Endpoint health (last {Math.round(h.window_seconds / 60)} minutes)</h2>
      <dl class="figures">
        {(
          [
            ["Delivered", "delivered", figure(h.delivered)],
            ["Failed (dead letters)", "failed", figure(h.failed)],
            ["Success rate", "success_rate", percent(h.success_rate)],
            ["Latency p50 (ms)", "latency_ms.p50", figure(h.latency_ms.p50)],
            ["Latency p95 (ms)", "latency_ms.p95", figure(h.latency_ms.p95)],
          ] as const
        ).map(([label, key, value]) => (
          <div key={key}>
            <dt>{label}</dt>
            <dd data-figure={`health.${key}`}>{value}</dd>
          </div>
        ))}
      </dl>
      <dl class="facts">
        <dt>Last delivered</dt>
        <dd data-figure="health.last_delivered_at">
          <Time value={h.last_delivered_at} />
        </dd>
        <dt>Last error</dt>
        <dd data-figure="health.last_error">
          {h.last_error ? (
            <>
              {h.last_error.message} (<Time value={h.last_error.at} />)
            </>
          ) : (
            "—"
          )}
        </dd>
      </dl>

      <Replay subscriptionId={s.id} />
    </>
  );
}

/** POST /api/v1/replays: the log's events of a range sent again to this subscription. */
function Replay({ subscriptionId }: { subscriptionId: string }) {
  const [draft, setDraft] = useState({ start: "", end: "", eventTypes: "" });
  const { busy, problem, run } = useAction();
  const [done, setDone] = useState<{ replay_id: string; events: number }>();
  useEffect(() => setDone(undefined), [subscriptionId]);

  const submit = (event: Event) => {
    event.preventDefault();
    setDone(undefined);
    const types = eventTypesOf(draft.eventTypes);
    run(async () =>
      setDone(
        await api("/api/v1/replays", {
          method: "POST",
          body: {
            subscription_id: subscriptionId,
            ...(draft.start.trim() ? { start: draft.start.trim() } : {}),
            ...(draft.end.trim() ? { end: draft.end.trim() } : {}),
            ...(types.length > 0 ? { event_types: types } : {}),
          },
        }),
      ),
    );
  };

  return (
    <section aria-labelledby="replay">
      <h2 id="replay">Replay a range</h2>
      <p class="hint">The log's events in the range are sent again to this subscription.</p>
      <form class="filters" onSubmit={submit} aria-label="Replay">
        <TextField
          id="replay-start"
          label="From"
          hint="inclusive: 2025-10-01 or 2025-10-01T12:00:00Z"
          value={draft.start}
          onInput={(value) => setDraft({ ...draft, start: value })}
        />
        <TextField
          id="replay-end"
          label="To"
          hint="exclusive; a date covers its whole day"
          value={draft.end}
          onInput={(value) => setDraft({ ...draft, end: value })}
        />
        <TextField
          id="replay-types"
          label="Replay event types"
          hint="optional, comma-separated; empty: the subscription's own"
          value={draft.eventTypes}
          onInput={(value) => setDraft({ ...draft, eventTypes: value })}
        />
        <div class="actions">
          <button type="submit" disabled={busy}>
            Replay
          </button>
        </div>
      </form>
      {problem && <ProblemView problem={problem} />}
      {done && (
        <output class="notice" data-figure="replay.events">
          Replay {done.replay_id}: {done.events} {done.events === 1 ? "event" : "events"} queued.
        </output>
      )}
    </section>
  );
}
