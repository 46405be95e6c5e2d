import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, variables } from "../src/config.js";

describe("loadConfig", () => {
  it("has sane defaults with an empty environment", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      databaseUrl: undefined,
      dataDir: "./.herald",
      port: 3000,
      host: "127.0.0.1",
      adminToken: undefined,
      logLevel: "info",
      bodyLimitBytes: 5 * 1024 * 1024,
      requestTimeoutMs: 60_000,
      shutdownGraceMs: 10_000,
      worker: {
        batchSize: 100,
        leaseMs: 30_000,
        maxAttempts: 5,
        backoffBaseMs: 1000,
        backoffMaxMs: 60_000,
        pollIntervalMs: 5000,
      },
    });
  });

  it("reads every variable", () => {
    const config = loadConfig({
      DATABASE_URL: "postgres://u@h/db",
      PORT: "8080",
      HOST: "0.0.0.0",
      HERALD_ADMIN_TOKEN: "0123456789abcdef0123",
      LOG_LEVEL: "debug",
      HERALD_BODY_LIMIT_BYTES: "2048",
      HERALD_LEASE_MS: "20000",
    });
    expect(config).toMatchObject({
      databaseUrl: "postgres://u@h/db",
      port: 8080,
      host: "0.0.0.0",
      logLevel: "debug",
      bodyLimitBytes: 2048,
    });
    expect(config.worker.leaseMs).toBe(20_000);
    expect(() => loadConfig({ HERALD_LEASE_MS: "5000" })).toThrow(
      "HERALD_LEASE_MS=5000 must be a whole number from 15000",
    );
  });

  it("names every problem at once, with what to do", () => {
    let error: unknown;
    try {
      loadConfig({ PORT: "abc", DATABASE_URL: "mysql://x", LOG_LEVEL: "loud", HERALD_ADMIN_TOKEN: "short" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain("PORT=abc must be a whole number from 0 to 65535");
    expect(message).toContain("DATABASE_URL must be a postgres:// URL");
    expect(message).toContain("LOG_LEVEL=loud");
    expect(message).toContain("HERALD_ADMIN_TOKEN must be at least 16 characters");
  });
});

describe("a webhook request's public URL settings", () => {
  it("take an http(s) URL as written, less a trailing slash, and trust no proxy by default", () => {
    expect(loadConfig({})).toMatchObject({ publicUrl: undefined, trustProxy: false });
    expect(
      loadConfig({ HERALD_PUBLIC_URL: "https://Herald.example.com/hooks/", HERALD_TRUST_PROXY: "on" }),
    ).toMatchObject({ publicUrl: "https://Herald.example.com/hooks", trustProxy: true });
    for (const bad of ["herald.example.com", "ftp://h", "https://h/?a=1", "https://h/#x", "https://u:p@h"])
      expect(() => loadConfig({ HERALD_PUBLIC_URL: bad }), bad).toThrow(
        "HERALD_PUBLIC_URL must be an http:// or https:// URL without query or fragment",
      );
    expect(() => loadConfig({ HERALD_TRUST_PROXY: "maybe" })).toThrow(
      "HERALD_TRUST_PROXY=maybe must be on or off",
    );
  });
});

/** The README's configuration table and `variables` list the same names, defaults and ranges. */
describe("configuration docs", () => {
  it("match the code", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## CLI"));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \| ([^|]+) \|/gm)].map((m) => ({
      name: m[1],
      default: m[2]!.trim(),
      range: m[3]!.trim(),
    }));
    const inCode = variables.map((v) => ({
      name: v.name,
      default: v.default === undefined ? "—" : `\`${v.default}\``,
      range: v.min === undefined ? "—" : `${v.min}–${v.max}`,
    }));
    const byName = (a: { name?: string }, b: { name?: string }) =>
      String(a.name).localeCompare(String(b.name));
    expect(documented.sort(byName)).toEqual(inCode.sort(byName));
  });

  it("enforces each documented range at both ends", () => {
    for (const v of variables.filter((v) => v.min !== undefined)) {
      const env = (value: number) => ({ [v.name]: String(value) });
      expect(() => loadConfig(env(v.min! - 1)), v.name).toThrow(ConfigError);
      expect(() => loadConfig(env(v.max! + 1)), v.name).toThrow(ConfigError);
      // Two have a bound relative to another variable too (checked in the tests above).
      if (!["HERALD_PROCESSOR_YIELD_MS", "HERALD_BACKOFF_BASE_MS"].includes(v.name)) {
        expect(() => loadConfig(env(v.max!)), v.name).not.toThrow();
      }
    }
  });

  it("reads the worker settings the processor and the API use", () => {
    const config = loadConfig({
      HERALD_PROCESSOR_BATCH_SIZE: "3",
      HERALD_PROCESSOR_CONCURRENCY: "2",
      HERALD_MAX_ATTEMPTS: "7",
      HERALD_JSON_MAX_DEPTH: "32",
    });
    expect(config.worker).toMatchObject({ processorBatchSize: 3, processorConcurrency: 2, maxAttempts: 7 });
    expect(config.jsonMaxDepth).toBe(32);
  });
});
