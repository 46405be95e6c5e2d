import { render } from "preact";
import { useState } from "preact/hooks";
import { LocationProvider, Route, Router } from "preact-iso";
import { ApiError, currentSession, type Session, signIn, signOut } from "./api.js";
import { Layout, SessionContext } from "./layout.js";
import { href } from "./paths.js";
import { routes } from "./routes.js";
import { NotFound } from "./screens/notFound.js";
import { ProblemView, problemOf } from "./ui.js";
import "uplot/dist/uPlot.min.css";
import "./styles.css";

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | Error | undefined>();
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(key));
    } catch (e) {
      setError(e as Error);
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>Herald console</h1>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-describedby="api-key-hint"
        />
        <p id="api-key-hint" class="hint">
          A tenant's API key (<code>hk_…</code>) shows that tenant's data; the admin token shows tenants and
          keys. It is kept in this tab only, until you sign out or close it.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      {error && (
        <ProblemView
          problem={
            error instanceof ApiError && error.problem.status === 401
              ? { ...error.problem, detail: "This key was refused: check it and try again." }
              : error instanceof ApiError && error.problem.status === 404 && !key.trim().startsWith("hk_")
                ? {
                    ...error.problem,
                    detail:
                      "This is not a tenant's API key (hk_…), and this Herald has no admin API (HERALD_ADMIN_TOKEN is not set).",
                  }
                : problemOf(error)
          }
        />
      )}
    </main>
  );
}

function App() {
  const [session, setSession] = useState(currentSession);
  if (!session) return <SignIn onSignedIn={setSession} />;
  const visible = routes.filter((r) => (r.role ?? "tenant") === session.role);
  const end = () => {
    signOut();
    setSession(null);
  };
  return (
    <SessionContext.Provider value={{ session, signOut: end }}>
      <Layout routes={visible}>
        <Router>
          {[
            ...visible.map((r) => <Route key={r.path} path={href(r.path)} component={r.component} />),
            <Route key="404" default component={NotFound} />,
          ]}
        </Router>
      </Layout>
    </SessionContext.Provider>
  );
}

render(
  <LocationProvider scope="/console">
    <App />
  </LocationProvider>,
  document.getElementById("app")!,
);
