import { useEffect, useMemo, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import type { BusSeriesPoint } from "../../../src/bus/series.js";
import type { BusStats } from "../../../src/bus/stats.js";
import { queryOf } from "../api.js";
import { TimeChart } from "../chart.js";
import { useTitle } from "../layout.js";
import { href } from "../paths.js";
import { Empty, Fetched, figure, useApi, useClock } from "../ui.js";

/** GET /api/v1/events/stats */
interface Stats {
  /** `keys` names each dimension's value when grouped by two (`hour,source`). */
  buckets: { key: string; keys?: Record<string, string>; count: number }[];
  total: number;
}

/** GET /api/v1/message-events/stats */
interface ProviderStats {
  buckets: { provider: string; hour: string; count: number }[];
  total: number;
}

/** GET /api/v1/bus/series */
interface BusSeries {
  points: BusSeriesPoint[];
}

export const ranges = {
  hour: { label: "Last hour", seconds: 3600, bucket: "minute" },
  day: { label: "Last day", seconds: 86_400, bucket: "hour" },
  week: { label: "Last week", seconds: 7 * 86_400, bucket: "hour" },
} as const;
type Range = keyof typeof ranges;

const refreshMs = 10_000;

export function Overview() {
  useTitle("Overview");
  const { query, route } = useLocation();
  const range: Range = query.range && query.range in ranges ? (query.range as Range) : "hour";
  const { seconds, bucket } = ranges[range];
  // The range ends now and moves with each refresh (to the second: what the API is asked for).
  const now = useClock(refreshMs);
  const start = new Date((now - seconds) * 1000).toISOString();
  const live = { keep: true };

  const perHour = useApi<Stats>(`/api/v1/events/stats${queryOf({ group_by: "hour,source", start })}`, live);
  const bySource = useApi<Stats>(`/api/v1/events/stats${queryOf({ group_by: "source", start })}`, live);
  const byType = useApi<Stats>(`/api/v1/events/stats${queryOf({ group_by: "type", start })}`, live);
  const webhooks = useApi<ProviderStats>(`/api/v1/message-events/stats${queryOf({ start })}`, live);
  const bus = useApi<BusStats>(`/api/v1/bus/stats${queryOf({ window_seconds: seconds })}`, {
    refreshMs,
  });
  const busOverTime = useApi<BusSeries>(`/api/v1/bus/series${queryOf({ window_seconds: seconds, bucket })}`, {
    refreshMs,
  });

  return (
    <section>
      <h1>Overview</h1>
      <div class="toolbar">
        <label for="range">Range</label>
        <select
          id="range"
          value={range}
          onChange={(e) => route(`${href("/")}${queryOf({ range: e.currentTarget.value })}`)}
        >
          {Object.entries(ranges).map(([value, r]) => (
            <option key={value} value={value}>
              {r.label}
            </option>
          ))}
        </select>
        <span class="hint" aria-live="polite">
          Refreshed every {refreshMs / 1000} s{bus.at ? `, last at ${bus.at.toLocaleTimeString()}` : ""}.
        </span>
      </div>

      <h2>Events</h2>
      <Fetched state={perHour}>
        {(stats) => (
          <>
            <dl class="figures">
              <div>
                <dt>Events in range</dt>
                <dd data-figure="events.total">{figure(stats.total)}</dd>
              </div>
              <div>
                <dt>Events per second</dt>
                <dd data-figure="events.per_second">{figure(Number((stats.total / seconds).toFixed(3)))}</dd>
              </div>
            </dl>
            {stats.buckets.length === 0 ? (
              <Empty>No events in this range.</Empty>
            ) : (
              <HourChart stats={stats} />
            )}
          </>
        )}
      </Fetched>

      <div class="columns">
        <Breakdown title="By source" state={bySource} name="Source" />
        <Breakdown title="By type" state={byType} name="Event type" link />
      </div>

      <h2>Webhook events by provider</h2>
      <Fetched state={webhooks}>
        {(w) => (
          <>
            <dl class="figures">
              <div>
                <dt>Provider events in range</dt>
                <dd data-figure="webhooks.total">{figure(w.total)}</dd>
              </div>
            </dl>
            {w.buckets.length === 0 ? (
              <Empty>No provider events in this range.</Empty>
            ) : (
              <ProviderChart stats={w} />
            )}
          </>
        )}
      </Fetched>

      <h2>Delivery (the bus)</h2>
      <Fetched state={bus}>
        {(b) => (
          <>
            <dl class="figures">
              {(
                [
                  ["Latency p50 (ms)", "latency_ms.p50", b.latency_ms.p50],
                  ["Latency p95 (ms)", "latency_ms.p95", b.latency_ms.p95],
                  ["Latency p99 (ms)", "latency_ms.p99", b.latency_ms.p99],
                  ["Latency max (ms)", "latency_ms.max", b.latency_ms.max],
                  ["Deliveries per second", "throughput_per_s", b.throughput_per_s],
                  ["Success rate", "success_rate", b.success_rate],
                  ["Retry rate", "retry_rate", b.retry_rate],
                  ["Failure rate", "failure_rate", b.failure_rate],
                  ["Queue: pending", "outbox.pending", b.outbox.pending],
                  ["Queue: processing", "outbox.processing", b.outbox.processing],
                  ["Queue: completed", "outbox.completed", b.outbox.completed],
                  ["Queue: failed", "outbox.failed", b.outbox.failed],
                  ["Dead letters", "dead_letters", b.dead_letters],
                  ["Lag: oldest due delivery (ms)", "lag_ms", b.lag_ms],
                ] as const
              ).map(([label, key, value]) => (
                <div key={key}>
                  <dt>{label}</dt>
                  <dd data-figure={`bus.${key}`}>{figure(value)}</dd>
                </div>
              ))}
            </dl>
            <Fetched state={busOverTime}>
              {(series) =>
                series.points.length === 0 ? (
                  <p class="hint">Nothing was delivered in this range.</p>
                ) : (
                  <DeliveryChart points={series.points} bucket={bucket} />
                )
              }
            </Fetched>
            <BusSamples stats={b} at={bus.at} range={range} />
            <p>
              <a href={href("/dead-letters")}>Dead letters</a> ·{" "}
              <a href={href("/subscriptions")}>Subscriptions</a>
            </p>
            {Object.keys(b.by_type).length > 0 && (
              <table>
                <caption>Deliveries by event type</caption>
                <thead>
                  <tr>
                    <th scope="col">Event type</th>
                    <th scope="col">Delivered</th>
                    <th scope="col">Failed</th>
                    <th scope="col">p95 (ms)</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(b.by_type).map(([type, t]) => (
                    <tr key={type}>
                      <th scope="row">{type}</th>
                      <td>{figure(t.delivered)}</td>
                      <td>{figure(t.failed)}</td>
                      <td>{figure(t.p95_ms)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Fetched>
    </section>
  );
}

/** Events per hour, one line for all and one per source (webhook: provider events, message.*). */
function HourChart({ stats }: { stats: Stats }) {
  const { times, series, rows } = useMemo(() => {
    const hours = [...new Set(stats.buckets.map((b) => b.keys?.hour ?? b.key))].sort();
    const sources = [...new Set(stats.buckets.map((b) => b.keys?.source ?? ""))]
      .filter((s) => s !== "")
      .sort();
    const count = (hour: string, source?: string) =>
      stats.buckets
        .filter(
          (b) => (b.keys?.hour ?? b.key) === hour && (source === undefined || b.keys?.source === source),
        )
        .reduce((sum, b) => sum + b.count, 0);
    return {
      times: hours.map((h) => Date.parse(h) / 1000),
      series: [
        { label: "All events", values: hours.map((h) => count(h)) },
        ...sources.map((source) => ({ label: source, values: hours.map((h) => count(h, source)) })),
      ],
      rows: hours.map((hour) => ({ hour, all: count(hour), bySource: sources.map((s) => count(hour, s)) })),
    };
  }, [stats]);
  const sources = series.slice(1).map((s) => s.label);
  return (
    <>
      <TimeChart label="Chart of events per hour over the range, by source" times={times} series={series} />
      <details>
        <summary>Events per hour as a table</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Hour (UTC)</th>
              <th scope="col">All events</th>
              {sources.map((s) => (
                <th scope="col" key={s}>
                  {s}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.hour}>
                <th scope="row">{r.hour}</th>
                <td>{r.all}</td>
                {r.bySource.map((n, i) => (
                  <td key={sources[i]}>{n}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </>
  );
}

/** Provider events per hour, one line per provider, and the same figures as a table. */
function ProviderChart({ stats }: { stats: ProviderStats }) {
  const { hours, providers, count } = useMemo(() => {
    const counts = new Map(stats.buckets.map((b) => [`${b.hour} ${b.provider}`, b.count]));
    return {
      hours: [...new Set(stats.buckets.map((b) => b.hour))].sort(),
      providers: [...new Set(stats.buckets.map((b) => b.provider))].sort(),
      count: (hour: string, provider: string) => counts.get(`${hour} ${provider}`) ?? 0,
    };
  }, [stats]);
  const series = useMemo(
    () => providers.map((p) => ({ label: p, values: hours.map((h) => count(h, p)) })),
    [providers, hours, count],
  );
  const times = useMemo(() => hours.map((h) => Date.parse(h) / 1000), [hours]);
  return (
    <>
      <TimeChart label="Chart of provider events per hour, by provider" times={times} series={series} />
      <details>
        <summary>Provider events per hour as a table</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Hour (UTC)</th>
              {providers.map((p) => (
                <th scope="col" key={p}>
                  {p}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {hours.map((h) => (
              <tr key={h}>
                <th scope="row">{h}</th>
                {providers.map((p) => (
                  <td key={p} data-figure={`webhooks.${p}.${h}`}>
                    {count(h, p)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </>
  );
}

interface Sample {
  at: number;
  pending: number;
  processing: number;
  deadLetters: number;
  p95: number | null;
}

/** Deliveries, failures and latency per minute or hour over the range (`GET /api/v1/bus/series`). */
function DeliveryChart({ points, bucket }: { points: BusSeriesPoint[]; bucket: string }) {
  const chart = useMemo(
    () => ({
      times: points.map((p) => Date.parse(p.at) / 1000),
      series: [
        { label: "Delivered", values: points.map((p) => p.delivered) },
        { label: "Retried", values: points.map((p) => p.retried) },
        { label: "Failed", values: points.map((p) => p.failed) },
        { label: "Latency p50 (ms)", values: points.map((p) => p.latency_ms.p50) },
        { label: "Latency p95 (ms)", values: points.map((p) => p.latency_ms.p95) },
        { label: "Latency p99 (ms)", values: points.map((p) => p.latency_ms.p99) },
      ],
    }),
    [points],
  );
  return (
    <>
      <TimeChart
        label={`Chart of deliveries, failures and latency per ${bucket} over the range`}
        times={chart.times}
        series={chart.series}
      />
      <p class="hint">
        <span data-figure="bus.series.delivered">{points.reduce((n, p) => n + p.delivered, 0)}</span>{" "}
        deliveries over {points.length} {bucket === "minute" ? "minutes" : "hours"} with any.
      </p>
    </>
  );
}

/**
 * The bus's figures are one aggregate per window (GET /api/v1/bus/stats has no time series), so the live chart
 * is drawn from the answers of each refresh since the page opened (or the range changed).
 */
function BusSamples({ stats, at, range }: { stats: BusStats; at: Date | undefined; range: string }) {
  const [samples, setSamples] = useState<Sample[]>([]);
  useEffect(() => setSamples([]), [range]);
  useEffect(() => {
    if (!at) return;
    setSamples((list) =>
      [
        ...list,
        {
          at: at.getTime() / 1000,
          pending: stats.outbox.pending,
          processing: stats.outbox.processing,
          deadLetters: stats.dead_letters,
          p95: stats.latency_ms.p95,
        },
      ].slice(-360),
    );
  }, [stats, at]);
  const chart = useMemo(
    () => ({
      times: samples.map((s) => s.at),
      series: [
        { label: "Queue: pending", values: samples.map((s) => s.pending) },
        { label: "Queue: processing", values: samples.map((s) => s.processing) },
        { label: "Dead letters", values: samples.map((s) => s.deadLetters) },
        { label: "Latency p95 (ms)", values: samples.map((s) => s.p95) },
      ],
    }),
    [samples],
  );
  if (samples.length < 2) return <p class="hint">The live chart starts with the next refresh.</p>;
  return (
    <TimeChart
      label="Chart of queue depth, dead letters and p95 latency since this page opened"
      times={chart.times}
      series={chart.series}
    />
  );
}

function Breakdown({
  title,
  name,
  state,
  link,
}: {
  title: string;
  name: string;
  state: ReturnType<typeof useApi<Stats>>;
  link?: boolean;
}) {
  return (
    <div>
      <h2>{title}</h2>
      <Fetched state={state}>
        {(stats) =>
          stats.buckets.length === 0 ? (
            <Empty>No events in this range.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">{name}</th>
                  <th scope="col">Events</th>
                </tr>
              </thead>
              <tbody>
                {stats.buckets.map((b) => (
                  <tr key={b.key}>
                    <th scope="row">
                      {link ? <a href={`${href("/events")}${queryOf({ type: b.key })}`}>{b.key}</a> : b.key}
                    </th>
                    <td>{figure(b.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Fetched>
    </div>
  );
}
