import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { expect } from "vitest";
import { createServerDatabase } from "./databases.js";
import { cleanEnv } from "./process.js";

/**
 * The console under test: a real `herald serve` (the built dist/cli/main.js, with the built console) on a
 * fresh PostgreSQL database, one tenant created through the admin API, and Debian's Chromium driven by
 * playwright-core. Each page records what a user would not want to see (console errors, uncaught errors,
 * failed requests, error answers) so a test can assert there were none, and can be scanned with axe-core.
 */

const cli = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Where Chromium is: CHROMIUM_PATH, else Debian's package (.ci/run installs it). */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = () => existsSync(chromiumPath);

export interface WatchedPage {
  page: Page;
  /** Console errors, page errors, failed requests and 4xx/5xx answers seen so far, one line each. */
  problems(): string[];
  /** axe-core's serious and critical violations of the page as it is now (rule id: the nodes' targets). */
  accessibilityViolations(): Promise<string[]>;
}

/**
 * Assert that a screen has no serious or critical axe violations. CONSOLE_SCREENSHOTS=dir keeps a picture of
 * each screen scanned (for docs and for a look).
 */
export async function expectAccessible(watched: WatchedPage, screen: string) {
  if (process.env.CONSOLE_SCREENSHOTS)
    await watched.page.screenshot({
      path: `${process.env.CONSOLE_SCREENSHOTS}/${screen.replace(/[^A-Za-z]+/g, "-").toLowerCase()}.png`,
      fullPage: true,
    });
  expect(await watched.accessibilityViolations(), `${screen}: serious or critical axe violations`).toEqual(
    [],
  );
}

export interface ConsoleHarness {
  /** Herald's base URL (`http://127.0.0.1:port`). */
  url: string;
  adminToken: string;
  /** An API key of the tenant created for the run. */
  apiKey: string;
  tenantName: string;
  /** Call the public API with the tenant's key; throws on a non-2xx answer. */
  api<T>(path: string, init?: { method?: string; body?: unknown; token?: string }): Promise<T>;
  /** A new page in its own browser context (its own sessionStorage), watched from its first request. */
  newPage(): Promise<WatchedPage>;
  close(): Promise<void>;
}

async function startHerald(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [cli, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald serve did not start:\n${output}`)), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Herald listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`herald serve exited (${code}):\n${output}`));
    });
  });
  return { child, url };
}

export interface ConsoleOptions {
  /** More environment for `herald serve` (e.g. HERALD_WEBHOOK_ALLOWED_NETWORKS for a local receiver). */
  env?: NodeJS.ProcessEnv;
}

export async function startConsole({ env = {} }: ConsoleOptions = {}): Promise<ConsoleHarness> {
  const database = await createServerDatabase();
  const adminToken = "console-test-admin-token-0123456789abcdef";
  const { child, url } = await startHerald(
    cleanEnv({
      DATABASE_URL: database.url,
      PORT: "0",
      LOG_LEVEL: "fatal",
      HERALD_ADMIN_TOKEN: adminToken,
      HERALD_POLL_INTERVAL_MS: "200",
      ...env,
    }),
  );
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const close = async () => {
    await browser?.close();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    await database.drop();
  };

  try {
    const call = async <T>(
      path: string,
      init: { method?: string; body?: unknown; token?: string } = {},
      token = init.token,
    ): Promise<T> => {
      const response = await fetch(`${url}${path}`, {
        method: init.method ?? "GET",
        headers: {
          authorization: `Bearer ${token}`,
          ...(init.body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${text}`);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    };
    const tenantName = "Console test tenant";
    const created = await call<{ api_key: string }>(
      "/api/v1/admin/tenants",
      { method: "POST", body: { name: tenantName } },
      adminToken,
    );
    const apiKey = created.api_key;
    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
    const opened = browser;

    return {
      url,
      adminToken,
      apiKey,
      tenantName,
      api: (path, init = {}) => call(path, init, init.token ?? apiKey),
      async newPage() {
        const context = await opened.newContext({ acceptDownloads: true });
        contexts.push(context);
        const page = await context.newPage();
        const seen: string[] = [];
        page.on("console", (message) => {
          if (message.type() === "error") seen.push(`console error: ${message.text()}`);
        });
        page.on("pageerror", (error) => seen.push(`page error: ${error.message}`));
        page.on("requestfailed", (request) => {
          // A navigation that replaces a page's pending fetches is not a failure the user sees.
          if (request.failure()?.errorText === "net::ERR_ABORTED") return;
          seen.push(`request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`);
        });
        page.on("response", (response) => {
          if (response.status() >= 400)
            seen.push(`answer ${response.status()}: ${response.request().method()} ${response.url()}`);
        });
        return {
          page,
          problems: () => [...seen],
          async accessibilityViolations() {
            // Evaluated through the DevTools protocol, which the page's CSP does not govern (it still governs
            // everything the console itself loads).
            await page.evaluate(axeSource);
            const results = await page.evaluate<AxeResults>("axe.run(document)");
            const violations = results.violations
              .filter((v) => v.impact === "serious" || v.impact === "critical")
              .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
            return violations;
          },
        };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

interface AxeResults {
  violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[];
}
