import { useState } from "preact/hooks";
import { api } from "../api.js";
import { useTitle } from "../layout.js";
import { Empty, Fetched, ProblemView, problemOf, Time, useApi } from "../ui.js";

interface Tenant {
  id: string;
  name: string;
  created_at: string;
}

/** The admin token's view: tenants, a new tenant, a new key for a tenant, a key revoked. */
export function Tenants() {
  useTitle("Tenants");
  const tenants = useApi<{ tenants: Tenant[] }>("/api/v1/admin/tenants");
  const [name, setName] = useState("");
  const [keyId, setKeyId] = useState("");
  const [shown, setShown] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();

  const act = async (work: () => Promise<string>) => {
    setError(undefined);
    setShown(undefined);
    try {
      setShown(await work());
      tenants.reload();
    } catch (e) {
      setError(e);
    }
  };
  const create = (event: Event) => {
    event.preventDefault();
    void act(async () => {
      const made = await api<{ tenant: Tenant; api_key: string }>("/api/v1/admin/tenants", {
        method: "POST",
        body: { name },
      });
      setName("");
      return `Tenant ${made.tenant.name} created. Its API key (shown once): ${made.api_key}`;
    });
  };
  const issue = (tenant: Tenant) =>
    act(async () => {
      const issued = await api<{ id: string; api_key: string }>(
        `/api/v1/admin/tenants/${tenant.id}/api-keys`,
        {
          method: "POST",
        },
      );
      return `New key ${issued.id} for ${tenant.name} (shown once): ${issued.api_key}`;
    });
  const revoke = (event: Event) => {
    event.preventDefault();
    void act(async () => {
      await api(`/api/v1/admin/api-keys/${encodeURIComponent(keyId.trim())}`, { method: "DELETE" });
      setKeyId("");
      return `Key ${keyId.trim()} revoked.`;
    });
  };

  return (
    <section>
      <h1>Tenants</h1>
      {shown && <output class="notice">{shown}</output>}
      {error !== undefined && <ProblemView problem={problemOf(error)} />}
      <Fetched state={tenants}>
        {(t) =>
          t.tenants.length === 0 ? (
            <Empty>No tenants yet.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Id</th>
                  <th scope="col">Created</th>
                  <th scope="col">Keys</th>
                </tr>
              </thead>
              <tbody>
                {t.tenants.map((tenant) => (
                  <tr key={tenant.id}>
                    <th scope="row">{tenant.name}</th>
                    <td>
                      <code>{tenant.id}</code>
                    </td>
                    <td>
                      <Time value={tenant.created_at} />
                    </td>
                    <td>
                      <button
                        type="button"
                        onClick={() => issue(tenant)}
                        aria-label={`Issue API key for ${tenant.name}`}
                      >
                        Issue API key
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Fetched>
      <form onSubmit={create} class="inline">
        <h2>New tenant</h2>
        <label for="tenant-name">Tenant name</label>
        <input
          id="tenant-name"
          required
          maxLength={200}
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <button type="submit">Create tenant</button>
      </form>
      <form onSubmit={revoke} class="inline">
        <h2>Revoke a key</h2>
        <label for="key-id">API key id</label>
        <input id="key-id" required value={keyId} onInput={(e) => setKeyId(e.currentTarget.value)} />
        <button type="submit">Revoke API key</button>
      </form>
    </section>
  );
}
