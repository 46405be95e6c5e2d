import { type ComponentChildren, createContext } from "preact";
import { useContext, useEffect, useRef } from "preact/hooks";
import { useLocation } from "preact-iso";
import type { Session } from "./api.js";
import { href } from "./paths.js";
import type { ConsoleRoute } from "./routes.js";

export const SessionContext = createContext<{ session: Session; signOut: () => void } | null>(null);

/** The signed-in session (screens render only when there is one). */
export function useSession() {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside a signed-in console");
  return value;
}

/** The document's title follows the screen, so history and screen readers name it. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · Herald console`;
  }, [title]);
}

export function Layout({ routes, children }: { routes: ConsoleRoute[]; children: ComponentChildren }) {
  const { session, signOut } = useSession();
  const { path } = useLocation();
  // Another screen: focus moves to its content, so keyboard and screen-reader users start there (not on load).
  const shown = useRef(path);
  useEffect(() => {
    if (shown.current === path) return;
    shown.current = path;
    document.getElementById("main")?.focus();
  }, [path]);
  const current = (route: ConsoleRoute) => {
    const target = href(route.path);
    return path === target || (route.path !== "/" && path.startsWith(`${target}/`));
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Herald</span>
        <span class="who">
          {session.role === "admin" ? "Signed in with the admin token" : "Signed in with an API key"}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <div class="frame">
        <nav aria-label="Screens">
          <ul>
            {routes
              .filter((r) => r.nav)
              .map((r) => (
                <li key={r.nav}>
                  <a href={href(r.path)} aria-current={current(r) ? "page" : undefined}>
                    {r.nav}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          {children}
        </main>
      </div>
    </>
  );
}
