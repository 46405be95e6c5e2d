import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, spawnProcess } from "./support/process.js";

const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** The README's first command on a fresh copy: the built CLI, no DATABASE_URL, an empty directory. */
describe("herald serve with no configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "herald-e2e-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("starts on PGlite, prints a working API key, and stops cleanly on SIGTERM", async () => {
    const server = spawnProcess(process.execPath, [cli, "serve"], {
      cwd: dir,
      env: cleanEnv({ PORT: "0", LOG_LEVEL: "warn" }),
    });
    try {
      const [, url] = await server.waitFor(/Herald listening on (http:\/\/\S+)/, 60_000);
      const [, key] = await server.waitFor(/API key, shown once: (hk_\S+)/);
      const [, adminToken] = await server.waitFor(/Admin token[^:]*: (\S+)/);
      expect(server.output()).toContain("embedded database");

      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: "ok" });
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const sources = await fetch(`${url}/api/v1/sources`, { headers: { authorization: `Bearer ${key}` } });
      expect(sources.status).toBe(200);
      expect(await sources.json()).toEqual({ sources: [], next_cursor: null });
      expect(
        (await fetch(`${url}/api/v1/sources`, { headers: { authorization: "Bearer hk_wrong" } })).status,
      ).toBe(401);
      const tenant = await fetch(`${url}/api/v1/admin/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "second" }),
      });
      expect(tenant.status).toBe(201);
    } finally {
      server.child.kill("SIGTERM");
    }
    expect(await server.exited).toBe(0);
  }, 90_000);

  it("reuses the data on the next start: no second tenant, same admin token", async () => {
    const again = spawnProcess(process.execPath, [cli, "serve"], {
      cwd: dir,
      env: cleanEnv({ PORT: "0", LOG_LEVEL: "warn" }),
    });
    try {
      await again.waitFor(/API docs/, 60_000);
      expect(again.output()).not.toContain("shown once");
      expect(again.output()).not.toContain("(new,");
    } finally {
      again.child.kill("SIGTERM");
    }
    expect(await again.exited).toBe(0);
  }, 90_000);

  it("lists every environment variable in --help", async () => {
    const help = spawnProcess(process.execPath, [cli, "--help"], { env: cleanEnv() });
    expect(await help.exited).toBe(0);
    for (const name of [
      "DATABASE_URL",
      "HERALD_DATA_DIR",
      "PORT",
      "HOST",
      "HERALD_ADMIN_TOKEN",
      "LOG_LEVEL",
      "HERALD_LEASE_MS",
    ]) {
      expect(help.output()).toContain(name);
    }
  });

  it("refuses a bad configuration with a message that says what to do", async () => {
    const bad = spawnProcess(process.execPath, [cli, "serve"], { cwd: dir, env: cleanEnv({ PORT: "http" }) });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain("PORT=http must be a whole number");
  });
});
