/**
 * The console's only way to Herald: the public HTTP API with `Authorization: Bearer <key>`. The key lives in
 * sessionStorage (gone when the tab closes), never in localStorage or a URL.
 */

const storageKey = "herald.console.key";

/** A tenant's API key sees that tenant's data; the admin token sees tenants and keys. */
export type Role = "tenant" | "admin";

export interface Session {
  key: string;
  role: Role;
}

/** API.md's problem+json body. */
export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  errors?: { path: string; message: string }[];
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
  }
}

// Tenant keys are issued as `hk_…`; anything else can only be the admin token. Deciding by the form avoids a
// request that is expected to fail.
const roleOf = (key: string): Role => (key.startsWith("hk_") ? "tenant" : "admin");

export function currentSession(): Session | null {
  const key = sessionStorage.getItem(storageKey);
  return key ? { key, role: roleOf(key) } : null;
}

/** Check the key against the API, then keep it for this tab; throws an ApiError when it is refused. */
export async function signIn(key: string): Promise<Session> {
  const session: Session = { key: key.trim(), role: roleOf(key.trim()) };
  await request(session.role === "tenant" ? "/api/v1/sources?limit=1" : "/api/v1/admin/tenants", {}, session);
  sessionStorage.setItem(storageKey, session.key);
  return session;
}

export function signOut() {
  sessionStorage.removeItem(storageKey);
}

async function problemOf(response: Response): Promise<Problem> {
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      return (await response.json()) as Problem;
    } catch {
      // fall through
    }
  }
  if (response.status === 404 && type === "")
    return { title: "Not found", status: 404, detail: "This Herald does not offer this route." };
  return { title: response.statusText || "Request failed", status: response.status };
}

async function request(path: string, init: RequestInit, session = currentSession()): Promise<Response> {
  const headers = new Headers(init.headers);
  if (session) headers.set("authorization", `Bearer ${session.key}`);
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError({ title: "Herald cannot be reached", status: 0, detail: "Check that it is running." });
  }
  if (!response.ok) throw new ApiError(await problemOf(response));
  return response;
}

/** GET (or another method with a JSON body) and read the JSON answer; 204 answers undefined. */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const response = await request(path, {
    method: init.method ?? "GET",
    ...(init.body === undefined
      ? {}
      : { body: JSON.stringify(init.body), headers: { "content-type": "application/json" } }),
  });
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** Fetch a file with the key (a plain link could not carry it) and hand it to the browser as a download. */
export async function download(path: string, filename: string): Promise<void> {
  const blob = await (await request(path, {})).blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A query string of the non-empty values, in the given order. */
export function queryOf(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}
