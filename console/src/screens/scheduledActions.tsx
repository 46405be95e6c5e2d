import { useState } from "preact/hooks";
import type { ScheduledActionView } from "../../../src/scheduler/actions.js";
import { api, type Problem, queryOf } from "../api.js";
import { useTitle } from "../layout.js";
import { FilterForm, Paged, pageSize, useListFilter } from "../pager.js";
import { Fetched, figure, ProblemView, problemOf, Time, useApi } from "../ui.js";

/** GET /api/v1/scheduled-actions (one of its items): the server's own type, erased at build. */
type ScheduledAction = ScheduledActionView;

/** src/domain/schedule.ts's states (not imported: that module brings the cron parser along). */
const states = ["scheduled", "running", "retrying", "completed", "dead", "cancelled"] as const;

const fields = [
  { name: "action", label: "Action", hint: "its name exactly, such as emit_event" },
  { name: "state", label: "State", options: states },
] as const;

export function ScheduledActions() {
  useTitle("Scheduled actions");
  const { applied, paging, form } = useListFilter(fields, "/scheduled-actions");
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
      <FilterForm label="Scheduled action filters" {...form} />
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
          <Paged
            items={p.scheduled_actions}
            nextCursor={p.next_cursor}
            paging={paging}
            empty="No scheduled actions match this filter."
          >
            {(actions) => (
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
                  {actions.map((a) => (
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
          </Paged>
        )}
      </Fetched>
    </section>
  );
}
