import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { queryOf } from "./api.js";
import { href } from "./paths.js";
import { Empty } from "./ui.js";

/** How many rows a list screen asks for at a time. */
export const pageSize = 50;

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

/**
 * One page of a list: its rows (`children`), or the `empty` sentence when it has none, then Next/Previous.
 */
export function Paged<T>({
  items,
  nextCursor,
  paging,
  empty,
  children,
}: {
  items: T[];
  nextCursor: string | null;
  paging: ReturnType<typeof useCursor>;
  empty: ComponentChildren;
  children: (items: T[]) => ComponentChildren;
}) {
  return (
    <>
      {items.length === 0 ? <Empty>{empty}</Empty> : children(items)}
      <Pager paging={paging} nextCursor={nextCursor} />
    </>
  );
}

/** A choice of a select: its value, or a value shown by another label (a subscription's id by its name). */
export type FilterOption = string | { value: string; label: string };

export interface FilterField {
  name: string;
  label: string;
  hint?: string;
  options?: readonly FilterOption[];
}

const optionValue = (o: FilterOption) => (typeof o === "string" ? o : o.value);
const optionLabel = (o: FilterOption) => (typeof o === "string" ? o : o.label);

/** The filter form of a list: each field labelled by what it filters; Search puts the filter in the URL. */
export function FilterForm({
  fields,
  values,
  onChange,
  onSubmit,
  clearHref,
  label,
  submitLabel = "Search",
}: {
  fields: readonly FilterField[];
  values: Record<string, string>;
  onChange: (values: Record<string, string>) => void;
  onSubmit: () => void;
  clearHref: string;
  label: string;
  /** The submit button's name. @defaultValue "Search" */
  submitLabel?: string;
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
                <option key={optionValue(o)} value={optionValue(o)}>
                  {optionLabel(o)}
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
        <button type="submit">{submitLabel}</button>
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

/**
 * A list screen's filter, kept in the URL of `path`: the applied filter (from the URL), the draft the form edits
 * (reset when the URL's filter changes), `search` to apply a filter, and the paging, back to the first page
 * whenever the applied filter changes. `form` is what `<FilterForm>` needs besides its label.
 */
export function useListFilter(fields: readonly FilterField[], path: string) {
  const { query, route } = useLocation();
  const applied = filterFrom(fields, query);
  const appliedQuery = queryOf(applied);
  const [draft, setDraft] = useState(applied);
  useEffect(() => setDraft(filterFrom(fields, query)), [appliedQuery]);
  const paging = useCursor(appliedQuery);
  const search = (values: Record<string, string>) => route(`${href(path)}${queryOf(values)}`);
  return {
    applied,
    paging,
    draft,
    search,
    form: {
      fields,
      values: draft,
      onChange: setDraft,
      onSubmit: () => search(draft),
      clearHref: href(path),
    },
  };
}
