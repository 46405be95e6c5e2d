import { useState } from "preact/hooks";
import { channels, suppressionReasons } from "../../../src/domain/vocabularies.js";
import { api, type Problem, queryOf } from "../api.js";
import { Confirm } from "../confirm.js";
import { useTitle } from "../layout.js";
import { FilterForm, Paged, pageSize, useListFilter } from "../pager.js";
import { Fetched, figure, ProblemView, problemOf, Time, useAction, useApi } from "../ui.js";

/** A suppression as the API shows it (GET /api/v1/suppressions). */
export interface Suppression {
  id: string;
  channel: string;
  address: string;
  reason: string;
  group_id: number | null;
  source_event_id: string | null;
  created_at: string;
}

const fields = [
  { name: "address", label: "Address", hint: "an email address or a phone number (+1 415 555 0100)" },
  { name: "channel", label: "Channel", options: channels },
  { name: "reason", label: "Reason", options: suppressionReasons },
] as const;

/** A table of suppressions; with `onRemove`, each row has a Remove button that asks for confirmation first. */
export function SuppressionTable({
  suppressions,
  caption,
  onRemove,
}: {
  suppressions: Suppression[];
  caption: string;
  onRemove?: (s: Suppression) => Promise<void>;
}) {
  const [confirming, setConfirming] = useState<string | undefined>();
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Address</th>
          <th scope="col">Channel</th>
          <th scope="col">Reason</th>
          <th scope="col">Group</th>
          <th scope="col">Since (UTC)</th>
          {onRemove && <th scope="col">Actions</th>}
        </tr>
      </thead>
      <tbody>
        {suppressions.map((s) => (
          <tr key={s.id}>
            <th scope="row">{s.address}</th>
            <td>{s.channel}</td>
            <td>{s.reason}</td>
            <td>{figure(s.group_id)}</td>
            <td>
              <Time value={s.created_at} />
            </td>
            {onRemove && (
              <td>
                <Confirm
                  as="div"
                  open={confirming === s.id}
                  onOpen={() => setConfirming(s.id)}
                  onKeep={() => setConfirming(undefined)}
                  onConfirm={async () => {
                    await onRemove(s);
                    setConfirming(undefined);
                  }}
                  ask={`Remove ${s.address}`}
                  question={`Remove ${s.address} (${s.reason})? It may be sent to again.`}
                  confirm="Confirm removal"
                  keep="Keep"
                />
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Suppressions() {
  useTitle("Suppressions");
  const { applied, paging, form } = useListFilter(fields, "/suppressions");
  const page = useApi<{ suppressions: Suppression[]; next_cursor: string | null }>(
    `/api/v1/suppressions${queryOf({ ...applied, limit: pageSize, cursor: paging.cursor })}`,
  );
  const [problem, setProblem] = useState<Problem | undefined>();
  const [notice, setNotice] = useState<string | undefined>();

  const remove = async (s: Suppression) => {
    setProblem(undefined);
    setNotice(undefined);
    try {
      await api(`/api/v1/suppressions/${s.id}`, { method: "DELETE" });
      setNotice(`Removed the suppression of ${s.address} (${s.reason}).`);
      page.reload();
    } catch (error) {
      setProblem(problemOf(error));
    }
  };

  return (
    <section>
      <h1>Suppressions</h1>
      <FilterForm label="Suppression filters" {...form} />
      <output class="notice-slot">{notice && <span class="notice">{notice}</span>}</output>
      {problem && <ProblemView problem={problem} />}
      <Fetched state={page}>
        {(p) => (
          <Paged
            items={p.suppressions}
            nextCursor={p.next_cursor}
            paging={paging}
            empty="No suppression matches this filter."
          >
            {(suppressions) => (
              <SuppressionTable
                suppressions={suppressions}
                caption="Suppressions, newest first"
                onRemove={remove}
              />
            )}
          </Paged>
        )}
      </Fetched>
      <AddSuppression
        onAdded={(s) => {
          setProblem(undefined);
          setNotice(`Suppressed ${s.address} (${s.channel}).`);
          page.reload();
        }}
      />
    </section>
  );
}

function AddSuppression({ onAdded }: { onAdded: (s: Suppression) => void }) {
  const [channel, setChannel] = useState<string>("email");
  const [address, setAddress] = useState("");
  const { busy, problem, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    run(async () => {
      const added = await api<Suppression>("/api/v1/suppressions", {
        method: "POST",
        body: { channel, address: address.trim(), reason: "manual" },
      });
      setAddress("");
      onAdded(added);
    });
  };
  return (
    <form class="inline" onSubmit={submit} aria-labelledby="add-suppression">
      <h2 id="add-suppression">Add a suppression</h2>
      <label for="new-channel">New suppression's channel</label>
      <select id="new-channel" value={channel} onChange={(e) => setChannel(e.currentTarget.value)}>
        {channels.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
      <label for="new-address">Address to suppress</label>
      <input
        id="new-address"
        required
        value={address}
        onInput={(e) => setAddress(e.currentTarget.value)}
        aria-describedby="new-address-hint"
      />
      <small id="new-address-hint" class="hint">
        Added with the reason "manual": Herald's senders will not send to it.
      </small>
      <button type="submit" disabled={busy}>
        Add suppression
      </button>
      {problem && <ProblemView problem={problem} />}
    </form>
  );
}
