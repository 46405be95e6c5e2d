import { existsSync, statSync } from "node:fs";
import { join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";
import { problem } from "./problem.js";

/**
 * The operator console: the single-page app built by `npm run build` into `dist/console`, served at
 * `/console` by the same process. It holds no secrets and needs no API key to load: it signs in against the
 * public API like any client. Every path under `/console/` that is not a built file answers `index.html`, so a
 * screen's URL can be reloaded and shared.
 */

/** `dist/console`, from `src/api` (tests) and from `dist/api` (the built server) alike. */
export const defaultConsoleDir = fileURLToPath(new URL("../../dist/console/", import.meta.url));

/** No inline script or style: Vite emits external files only, so nothing else need be allowed. */
export const consoleCsp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

export interface ConsoleOptions {
  /** Where the built console is. @defaultValue `dist/console` of this package */
  dir?: string;
}

export function consoleRoutes(app: FastifyInstance, options: ConsoleOptions = {}) {
  const dir = normalize(options.dir ?? defaultConsoleDir);
  app.register(async (scope) => {
    // Only `reply.sendFile`: which file a path means (or index.html) is decided below.
    await scope.register(fastifyStatic, { root: dir, serve: false });

    scope.addHook("onRequest", async (_request, reply) => {
      reply.header("content-security-policy", consoleCsp);
      reply.header("x-content-type-options", "nosniff");
      reply.header("referrer-policy", "no-referrer");
    });

    const answer = (path: string, reply: FastifyReply) => {
      if (!existsSync(join(dir, "index.html"))) {
        return reply
          .status(503)
          .type("application/problem+json")
          .send(problem("unavailable", "The console is not built: run `npm run build` (or `npm start`)."));
      }
      const file = builtFile(dir, path);
      // Hashed names under assets/: a changed file gets a new name, so its content can be kept for good.
      const hashed = file !== undefined && /^assets[/\\]/.test(file);
      reply.header("cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
      return reply.sendFile(file ?? "index.html", { cacheControl: false });
    };

    scope.get("/console", { schema: { hide: true } }, (_request, reply) => answer("", reply));
    scope.get<{ Params: { "*": string } }>("/console/*", { schema: { hide: true } }, (request, reply) =>
      answer(request.params["*"], reply),
    );
  });
}

/** The built file a path under `/console/` names, relative to `dir`, or undefined (then index.html). */
function builtFile(dir: string, path: string): string | undefined {
  if (path === "" || path.includes("\0")) return undefined;
  const full = normalize(join(dir, path));
  if (!full.startsWith(dir)) return undefined;
  try {
    return statSync(full).isFile() ? full.slice(dir.length).replace(/^[/\\]/, "") : undefined;
  } catch {
    return undefined;
  }
}
