import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import Fastify from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { consoleCsp, consoleRoutes, defaultConsoleDir } from "../src/api/console.js";

/** Every file of the built console, relative to its folder. */
function builtFiles(dir: string, under = ""): string[] {
  return readdirSync(join(dir, under), { withFileTypes: true }).flatMap((entry) => {
    const path = under === "" ? entry.name : `${under}/${entry.name}`;
    return entry.isDirectory() ? builtFiles(dir, path) : [path];
  });
}

describe("the built console", () => {
  // `npm test` builds first (pretest); a bare `vitest run` after `npm run build` sees the same files.
  it.skipIf(!existsSync(join(defaultConsoleDir, "index.html")))(
    "is at most 300 KB gzipped, all of it, and has no inline script",
    () => {
      const files = builtFiles(defaultConsoleDir);
      const gzipped = files.map(
        (f) => gzipSync(readFileSync(join(defaultConsoleDir, f)), { level: 9 }).length,
      );
      const total = gzipped.reduce((a, b) => a + b, 0);
      console.log(`console: ${files.length} files, ${(total / 1024).toFixed(1)} KB gzipped`);
      expect(total).toBeLessThanOrEqual(300 * 1024);
      const html = readFileSync(join(defaultConsoleDir, "index.html"), "utf8");
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/<style\b|\sstyle=/);
    },
  );
});

describe("serving the console", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function appWith(files: Record<string, string>) {
    const dir = mkdtempSync(join(tmpdir(), "herald-console-"));
    dirs.push(dir);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, path, ".."), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    const app = Fastify();
    consoleRoutes(app, { dir });
    await app.ready();
    return app;
  }

  it("answers a problem saying to build it when it is not built", async () => {
    const app = await appWith({});
    const response = await app.inject({ url: "/console/events" });
    expect(response.statusCode).toBe(503);
    expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ status: 503, code: "unavailable" });
    expect(response.json().detail).toContain("npm run build");
  });

  it("answers index.html for any screen's URL, files as they are, with the CSP and cache headers", async () => {
    const app = await appWith({ "index.html": "<!doctype html>index", "assets/app-1234.js": "run()" });
    for (const url of [
      "/console",
      "/console/",
      "/console/events?type=message.*",
      "/console/contacts/a%2Fb",
    ]) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(200);
      expect(response.body).toBe("<!doctype html>index");
      expect(response.headers["cache-control"]).toBe("no-cache");
      expect(response.headers["content-security-policy"]).toBe(consoleCsp);
      expect(response.headers["x-content-type-options"]).toBe("nosniff");
    }
    const asset = await app.inject({ url: "/console/assets/app-1234.js" });
    expect(asset.body).toBe("run()");
    expect(asset.headers["content-type"]).toMatch(/javascript/);
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    // Nothing outside the console's folder is reachable.
    for (const url of [
      "/console/../package.json",
      "/console/%2e%2e/%2e%2e/package.json",
      "/console/..%2f..%2fx",
    ]) {
      const response = await app.inject({ url });
      expect([200, 404], url).toContain(response.statusCode);
      if (response.statusCode === 200) expect(response.body).toBe("<!doctype html>index");
    }
  });
});
