import { useEffect, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, type Problem, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { FilterForm, filterFrom, Pager, useCursor } from "../pager.js";
import { href } from "../paths.js";
import { Empty, Fetched, figure, ProblemView, problemOf, Time, useApi } from "../ui.js";

interface ScheduledAction {
  id: string;
  action: string;
  state: string;
  run_at: string;
  next_run_at: string | null;
  every: string | null;
  cron: string | null;
  time_zone: string | null;
  missed: string;
  payload: Record<string, unknown>;
  key: string | null;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  last_run_at: string | null;
  cancelled_at: string | null;
  created_at: string;
}

/** src/domain/schedule.ts's states (not imported: that module brings the cron parser along). */
const states = ["scheduled", "running", "retrying", "completed", "dead", "cancelled"] as const;

const fields = [
  { name: "action", label: "Action", hint: "its name exactly, such as emit_event" },
  { name: "state", label: "State", options: states },
] as const;

const pageSize = 50;

export function ScheduledActions() {
  useTitle("Scheduled actions");
  const { query, route } = useLocation();
  const applied = filterFrom(fields, query);
  const appliedQuery = queryOf(applied);
  const [draft, setDraft] = useState(applied);
  useEffect(() => setDraft(filterFrom(fields, query)), [appliedQuery]);
  const paging = useCursor(appliedQuery);
  const page = useApi<{ scheduled_actions: ScheduledAction[]; next_cursor: string | null }>(
    `/api/v1/scheduled-actions${queryOf({ ...applied, limit: pageSize, cursor: paging.cursor })}`,
  );
  const [problem, setProblem] = useState<{ action: ScheduledAction; problem: Problem } | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const [busy, setBusy] = useState<string | undefined>();

  const cancel = async (a: ScheduledAction) => {
    setProblem(undefined);
    setNotice(undefined);
    setBusy(a.id);
    try {
      await api(`/api/v1/scheduled-actions/${a.id}`, { method: "DELETE" });
      setNotice(`Cancelled ${a.action} (${a.id}).`);
    } catch (error) {
      setProblem({ action: a, problem: problemOf(error) });
    } finally {
      setBusy(undefined);
      page.reload();
    }
  };

  return (
    <section>
      <h1>Scheduled actions</h1>
      <FilterForm
        label="Scheduled action filters"
        fields={fields}
        values={draft}
        onChange={setDraft}
        onSubmit={() => route(`${href("/scheduled-actions")}${queryOf(draft)}`)}
        clearHref={href("/scheduled-actions")}
      />
      <output class="notice-slot">{notice && <span class="notice">{notice}</span>}</output>
      {problem && (
        <>
          <p>
            {problem.action.action} (<code>{problem.action.id}</code>) could not be cancelled:
          </p>
          <ProblemView problem={problem.problem} />
        </>
      )}
      <Fetched state={page}>
        {(p) => (
          <>
            {p.scheduled_actions.length === 0 ? (
              <Empty>No scheduled actions match this filter.</Empty>
            ) : (
              <table>
                <caption>Scheduled actions, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Action</th>
                    <th scope="col">State</th>
                    <th scope="col">Next run (UTC)</th>
                    <th scope="col">Repeats</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last run (UTC)</th>
                    <th scope="col">Last error</th>
                    <th scope="col">Key</th>
                    <th scope="col">Created (UTC)</th>
                    <th scope="col">Cancel</th>
                  </tr>
                </thead>
                <tbody>
                  {p.scheduled_actions.map((a) => (
                    <tr key={a.id} data-id={a.id}>
                      <th scope="row">
                        {a.action}
                        <br />
                        <code class="hint">{a.id}</code>
                      </th>
                      <td data-state={a.state}>{a.state}</td>
                      <td>
                        <Time value={a.next_run_at} />
                      </td>
                      <td>
                        {a.every
                          ? `every ${a.every}`
                          : a.cron
                            ? `cron ${a.cron}${a.time_zone ? ` (${a.time_zone})` : ""}`
                            : "once"}
                      </td>
                      <td>
                        {figure(a.attempts)} of {figure(a.max_attempts)}
                      </td>
                      <td>
                        <Time value={a.last_run_at} />
                      </td>
                      <td>{figure(a.last_error)}</td>
                      <td>{figure(a.key)}</td>
                      <td>
                        <Time value={a.created_at} />
                      </td>
                      <td>
                        {a.state === "cancelled" ? (
                          <Time value={a.cancelled_at} />
                        ) : (
                          <button
                            type="button"
                            disabled={busy === a.id}
                            aria-label={`Cancel ${a.action} ${a.id}`}
                            onClick={() => cancel(a)}
                          >
                            Cancel
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <Pager paging={paging} nextCursor={p.next_cursor} />
          </>
        )}
      </Fetched>
    </section>
  );
}
