import { useLocation, useRoute } from "preact-iso";
import { queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { Paged, pageSize, useCursor } from "../pager.js";
import { href } from "../paths.js";
import { Fetched, Time, useApi } from "../ui.js";

/** GET /api/v1/sources (one of its items) */
interface Source {
  id: string;
  provider: string;
  name: string;
  verified: boolean;
  /** The path the provider calls: `/api/v1/webhooks/{provider}/{id}`. */
  url: string;
  /** The full URL (HERALD_PUBLIC_URL, else the scheme and host this request came by). */
  webhook_url: string;
  created_at: string;
  last_received_at: string | null;
}

/** GET /api/v1/sources/{id}/deliveries (one of its items) */
interface Delivery {
  id: string;
  received_at: string;
  event_count: number;
  status: string;
  rejected_reason: string | null;
  remote_ip: string | null;
}

/** The URL to paste into the provider's settings: HERALD_PUBLIC_URL's, else as this page reached Herald. */
const webhookUrl = (source: Source) => source.webhook_url;

const verification = (source: Source) =>
  source.verified ? "Verified: signature checked" : "Not verified: accepts unsigned requests";

/** The Sources screen (`/sources`) and one source with its deliveries (`/sources/{id}?show=rejected|all`). */
export function Sources() {
  const { params } = useRoute();
  return params.id ? <SourceDetail id={params.id} /> : <SourceList />;
}

function SourceList() {
  useTitle("Sources");
  const paging = useCursor("");
  const page = useApi<{ sources: Source[]; next_cursor: string | null }>(
    `/api/v1/sources${queryOf({ limit: pageSize, cursor: paging.cursor })}`,
  );
  return (
    <section>
      <h1>Sources</h1>
      <p class="hint">
        One per provider connection: paste its webhook URL into the provider's settings. A verified source
        checks each request's signature.
      </p>
      <Fetched state={page}>
        {(p) => (
          <Paged
            items={p.sources}
            nextCursor={p.next_cursor}
            paging={paging}
            empty={
              <>
                No sources yet: create one with <code>POST /api/v1/sources</code>.
              </>
            }
          >
            {(sources) => (
              <table class="sources">
                <caption>Webhook sources, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Provider</th>
                    <th scope="col">Webhook URL</th>
                    <th scope="col">Verification</th>
                    <th scope="col">Last delivery received</th>
                  </tr>
                </thead>
                <tbody>
                  {sources.map((s) => (
                    <tr key={s.id}>
                      <th scope="row">
                        <a href={href(`/sources/${s.id}`)}>{s.name}</a>
                      </th>
                      <td>{s.provider}</td>
                      <td>
                        <code>{webhookUrl(s)}</code>
                      </td>
                      <td>{verification(s)}</td>
                      <td>
                        <Time value={s.last_received_at} />
                      </td>
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

function SourceDetail({ id }: { id: string }) {
  const source = useApi<Source>(`/api/v1/sources/${id}`);
  useTitle(source.data ? `Source ${source.data.name}` : "Source");
  return (
    <section>
      <p>
        <a href={href("/sources")}>All sources</a>
      </p>
      <h1>Source {source.data?.name ?? ""}</h1>
      <Fetched state={source}>
        {(s) => (
          <>
            <dl class="facts">
              <dt>Provider</dt>
              <dd>{s.provider}</dd>
              <dt>Webhook URL</dt>
              <dd>
                <code data-figure="source.url">{webhookUrl(s)}</code>
              </dd>
              <dt>Verification</dt>
              <dd data-figure="source.verified">{verification(s)}</dd>
              <dt>Last delivery received</dt>
              <dd data-figure="source.last_received_at">
                <Time value={s.last_received_at} />
              </dd>
              <dt>Created</dt>
              <dd>
                <Time value={s.created_at} />
              </dd>
            </dl>
            <Deliveries sourceId={s.id} />
          </>
        )}
      </Fetched>
    </section>
  );
}

const shows = { rejected: "Rejected only", all: "All deliveries" } as const;
type Show = keyof typeof shows;

function Deliveries({ sourceId }: { sourceId: string }) {
  const { query, route, path } = useLocation();
  const show: Show = query.show === "all" ? "all" : "rejected";
  const paging = useCursor(show);
  const page = useApi<{ deliveries: Delivery[]; next_cursor: string | null }>(
    `/api/v1/sources/${sourceId}/deliveries${queryOf({
      rejected: show === "rejected" ? "true" : undefined,
      limit: pageSize,
      cursor: paging.cursor,
    })}`,
  );
  return (
    <section aria-labelledby="deliveries">
      <h2 id="deliveries">Deliveries</h2>
      <p class="hint">
        A rejected delivery passed its signature check but its body was refused (answered 400, kept with the
        reason, never processed). Requests with a missing or wrong signature are answered 401 and not stored,
        so they are not listed; <code>/metrics</code> counts them (
        <code>herald_webhook_deliveries_rejected_total</code>, reason <code>invalid_signature</code>).
      </p>
      <div class="toolbar">
        <label for="deliveries-show">Show</label>
        <select
          id="deliveries-show"
          value={show}
          onChange={(e) => route(`${path}${queryOf({ show: e.currentTarget.value })}`)}
        >
          {Object.entries(shows).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <Fetched state={page}>
        {(p) => (
          <Paged
            items={p.deliveries}
            nextCursor={p.next_cursor}
            paging={paging}
            empty={show === "rejected" ? "No rejected deliveries." : "No deliveries received yet."}
          >
            {(deliveries) => (
              <table class="deliveries">
                <caption>{show === "rejected" ? "Rejected deliveries" : "Deliveries"}, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Received</th>
                    <th scope="col">Status</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Events</th>
                    <th scope="col">From IP</th>
                  </tr>
                </thead>
                <tbody>
                  {deliveries.map((d) => (
                    <tr key={d.id}>
                      <th scope="row">
                        <Time value={d.received_at} />
                      </th>
                      <td>{d.status}</td>
                      <td>{d.rejected_reason ?? "—"}</td>
                      <td>{d.event_count}</td>
                      <td>{d.remote_ip ?? "—"}</td>
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
