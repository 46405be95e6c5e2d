import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, type Problem } from "./api.js";

export interface Loaded<T> {
  data: T | undefined;
  error: Problem | undefined;
  loading: boolean;
  /** When the data shown was fetched. */
  at: Date | undefined;
  reload: () => void;
}

const problemFrom = (error: unknown): Problem =>
  error instanceof ApiError
    ? error.problem
    : {
        title: "Unexpected error",
        status: 0,
        detail: error instanceof Error ? error.message : String(error),
      };

export interface UseApiOptions {
  /** Ask again this often (while the tab is visible). */
  refreshMs?: number;
  /** Keep the data on screen while another path loads (a path that moves with the clock). */
  keep?: boolean;
}

/**
 * GET `path` (nothing while it is null) and again whenever it changes. A refresh keeps the data on screen; an
 * answer to an older path is dropped.
 */
export function useApi<T>(path: string | null, { refreshMs, keep = false }: UseApiOptions = {}): Loaded<T> {
  const [state, setState] = useState<Omit<Loaded<T>, "reload">>({
    data: undefined,
    error: undefined,
    loading: path !== null,
    at: undefined,
  });
  const [tick, setTick] = useState(0);
  const latest = useRef(path);
  latest.current = path;
  const previous = useRef<string | null>(null);

  useEffect(() => {
    if (path === null) return;
    const fresh = previous.current !== path && !keep;
    previous.current = path;
    setState((s) => ({ ...s, loading: true, ...(fresh ? { data: undefined, error: undefined } : {}) }));
    api<T>(path).then(
      (data) => {
        if (latest.current === path) setState({ data, error: undefined, loading: false, at: new Date() });
      },
      (error: unknown) => {
        if (latest.current === path)
          setState((s) => ({ ...s, error: problemFrom(error), loading: false, at: new Date() }));
      },
    );
  }, [path, tick, keep]);

  useEffect(() => {
    if (!refreshMs || path === null) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") setTick((t) => t + 1);
    }, refreshMs);
    return () => clearInterval(timer);
  }, [path, refreshMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A problem+json answer, readable: its title, detail and field errors. */
export function ProblemView({ problem }: { problem: Problem }) {
  return (
    <div class="problem" role="alert">
      <p>
        <strong>{problem.title}</strong>
        {problem.status ? ` (${problem.status}${problem.code ? `, ${problem.code}` : ""})` : ""}
      </p>
      {problem.detail && <p>{problem.detail}</p>}
      {problem.errors && problem.errors.length > 0 && (
        <ul>
          {problem.errors.map((e) => (
            <li key={e.path}>
              <code>{e.path}</code> {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export const problemOf = problemFrom;

/** Now, in whole seconds, moving every `everyMs` while the tab is visible: for ranges that end now. */
export function useClock(everyMs: number): number {
  const [now, setNow] = useState(() => Math.floor(Date.now() / 1000));
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") setNow(Math.floor(Date.now() / 1000));
    }, everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return <output class="loading">{what}…</output>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/**
 * The usual three states of a fetched thing: loading (nothing yet), the problem, or the content. A problem
 * after data keeps the data on screen below the problem.
 */
export function Fetched<T>({
  state,
  children,
}: {
  state: Loaded<T>;
  children: (data: T) => ComponentChildren;
}) {
  return (
    <>
      {state.error && <ProblemView problem={state.error} />}
      {state.data === undefined ? state.loading && <Loading /> : children(state.data)}
    </>
  );
}

/** A number or other figure exactly as the API gave it; null as a dash. */
export const figure = (value: unknown): string =>
  value === null || value === undefined
    ? "—"
    : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);

/** An RFC 3339 time as the API gave it, with a readable title. */
export function Time({ value }: { value: string | null | undefined }) {
  if (!value) return <>—</>;
  return <time dateTime={value}>{value.replace("T", " ").replace("Z", " UTC")}</time>;
}

/**
 * A button's or form's request: `run(work)` marks it busy, clears the previous problem, and keeps the problem
 * of a refusal for `<ProblemView>`.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setProblem(undefined);
    try {
      await work();
    } catch (error) {
      setProblem(problemFrom(error));
    } finally {
      setBusy(false);
    }
  };
  return { busy, problem, run };
}

/** A labelled text input of a form, with its hint (`{id}-hint`) when it has one. */
export function TextField({
  id,
  label,
  hint,
  value,
  onInput,
  type,
  ...input
}: {
  id: string;
  label: string;
  hint?: string;
  value: string;
  onInput: (value: string) => void;
  type?: "text" | "url" | "number";
  required?: boolean;
  min?: number;
  max?: number;
}) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        // preact types each input type's attributes apart; these few are valid for all three.
        type={type as "text" | undefined}
        {...input}
        value={value}
        aria-describedby={hint ? `${id}-hint` : undefined}
        onInput={(e) => onInput(e.currentTarget.value)}
      />
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}
