import { useEffect, useState } from "preact/hooks";

/**
 * Next/Previous over a keyset-paged list: the cursor of the page shown and those before it (Previous pops
 * one). Back to the first page whenever `resetKey` (the applied filter) changes.
 */
export function useCursor(resetKey: string) {
  const [cursors, setCursors] = useState<string[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  useEffect(() => {
    setCursors([]);
    setCursor(undefined);
  }, [resetKey]);
  return {
    cursor,
    hasPrevious: cursor !== undefined,
    previous: () => {
      setCursor(cursors.at(-1));
      setCursors(cursors.slice(0, -1));
    },
    next: (nextCursor: string) => {
      setCursors(cursor !== undefined ? [...cursors, cursor] : []);
      setCursor(nextCursor);
    },
  };
}

export function Pager({
  paging,
  nextCursor,
}: {
  paging: ReturnType<typeof useCursor>;
  nextCursor: string | null;
}) {
  return (
    <div class="pager">
      <button type="button" disabled={!paging.hasPrevious} onClick={paging.previous}>
        Previous
      </button>
      <button type="button" disabled={!nextCursor} onClick={() => nextCursor && paging.next(nextCursor)}>
        Next
      </button>
    </div>
  );
}

export interface FilterField {
  name: string;
  label: string;
  hint?: string;
  options?: readonly string[];
}

/** The filter form of a list: each field labelled by what it filters; Search puts the filter in the URL. */
export function FilterForm({
  fields,
  values,
  onChange,
  onSubmit,
  clearHref,
  label,
}: {
  fields: readonly FilterField[];
  values: Record<string, string>;
  onChange: (values: Record<string, string>) => void;
  onSubmit: () => void;
  clearHref: string;
  label: string;
}) {
  return (
    <form
      class="filters"
      aria-label={label}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      {fields.map((f) => (
        <div class="field" key={f.name}>
          <label for={`filter-${f.name}`}>{f.label}</label>
          {f.options ? (
            <select
              id={`filter-${f.name}`}
              value={values[f.name] ?? ""}
              onChange={(e) => onChange({ ...values, [f.name]: e.currentTarget.value })}
            >
              <option value="">Any</option>
              {f.options.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          ) : (
            <input
              id={`filter-${f.name}`}
              value={values[f.name] ?? ""}
              onInput={(e) => onChange({ ...values, [f.name]: e.currentTarget.value })}
              aria-describedby={f.hint ? `hint-${f.name}` : undefined}
            />
          )}
          {f.hint && (
            <small id={`hint-${f.name}`} class="hint">
              {f.hint}
            </small>
          )}
        </div>
      ))}
      <div class="actions">
        <button type="submit">Search</button>
        <a href={clearHref}>Clear</a>
      </div>
    </form>
  );
}

/** The values of `fields` in the URL's query (the applied filter). */
export const filterFrom = (fields: readonly FilterField[], query: Record<string, string>) =>
  Object.fromEntries(fields.map((f) => [f.name, query[f.name] ?? ""]).filter(([, v]) => v !== "")) as Record<
    string,
    string
  >;
