import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * Arrows only run down: a module imports from its own layer or a lower one, never a higher one, and a
 * capability never from another capability. Every import of `src/**` counts: type-only ones, `export … from`
 * and `import()` too (read with TypeScript's own scanner, `ts.preProcessFile`).
 *
 * The layers, from the bottom up (README, "Architecture"):
 *
 * - errors.ts: the error catalogue, below everything (domain's cursors raise a HeraldError).
 * - domain: pure types and rules, vocabularies among them.
 * - providers: one module per provider, pure.
 * - db: the schema (vocabularies come from domain), connection, transactions, partitions.
 * - queue: the claim engine, the outbox's enqueue rules, the hand-over of rows claimed by a writer.
 * - events: the log (its append queues the outbox rows through queue/).
 * - messages: outbound messages, their events and statuses, suppressions.
 * - capabilities: ingest, inbound, bus, scheduler, retention, and tenancy (tenants, API keys, webhook sources: it needs
 *   only db and domain, and only the API, the CLI and the runtime use it). None imports another.
 * - config.ts (and config/, its variables): read and validated once, at the edge: by the API, the CLI and the runtime, never below.
 * - api (and metricsServer.ts, the metrics endpoint): the HTTP face over the capabilities.
 * - top: the CLI, runtime.ts (wires the pieces) and index.ts (the library's surface).
 */
const layers: { name: string; holds: string[]; peers?: "independent" }[] = [
  { name: "errors", holds: ["errors.ts"] },
  { name: "domain", holds: ["domain"] },
  { name: "providers", holds: ["providers"] },
  { name: "db", holds: ["db"] },
  { name: "queue", holds: ["queue"] },
  { name: "events", holds: ["events"] },
  { name: "messages", holds: ["messages"] },
  {
    name: "capabilities",
    holds: ["ingest", "inbound", "bus", "scheduler", "tenancy", "retention"],
    peers: "independent",
  },
  { name: "config", holds: ["config.ts", "config"] },
  { name: "api", holds: ["api", "metricsServer.ts"] },
  { name: "top", holds: ["cli", "runtime.ts", "runtime", "index.ts"] },
];

/**
 * Imports that run up today and are left for later, each with its reason: `from → to` as the failure
 * message names them. Keep it empty; an entry that no longer occurs fails the test so it is removed.
 */
const knownExceptions: string[] = [];

/** A module's unit: its folder under `src/` (`db` for `db/schema/bus.ts`), or its name at the top. */
const unitOf = (file: string) => file.split("/")[0]!;

function layerOf(file: string) {
  const unit = unitOf(file);
  const rank = layers.findIndex((l) => l.holds.includes(unit));
  return rank === -1 ? undefined : { rank, unit, layer: layers[rank]! };
}

/** Every `.ts` file under `dir`, relative to it with `/` separators. */
function sourceFiles(dir: string, under = ""): string[] {
  return readdirSync(join(dir, under), { withFileTypes: true }).flatMap((entry) => {
    const path = under === "" ? entry.name : `${under}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(dir, path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The relative imports of a source text, as written (`../db/client.js`). Packages are not ours to check. */
function relativeImports(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((i) => i.fileName)
    .filter((name) => name.startsWith("./") || name.startsWith("../"));
}

/** The import graph of `src/`: each file (relative to `src/`) and the files it imports, as written. */
function importGraph(src: string): Map<string, string[]> {
  return new Map(
    sourceFiles(src).map((file) => [file, relativeImports(readFileSync(join(src, file), "utf8"))]),
  );
}

/** What is wrong with a graph: arrows up, between capabilities, or from or to a module of no layer. */
function violations(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  for (const [file, imports] of graph) {
    const from = layerOf(file);
    if (!from) {
      found.push(`src/${file}: in no layer (add its folder to \`layers\` in test/layers.unit.spec.ts)`);
      continue;
    }
    for (const specifier of imports) {
      // Sources import each other by their built names (`./x.js` is `x.ts`).
      const target = posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, ".ts");
      const arrow = `src/${file} → ${specifier}`;
      if (target.startsWith("../")) {
        found.push(`${arrow}: imports from outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (!to) found.push(`${arrow}: src/${target} is in no layer`);
      else if (to.rank > from.rank)
        found.push(
          `${arrow}: ${from.unit} (${from.layer.name}) may not import ${to.unit} (${to.layer.name}, above it)`,
        );
      else if (to.rank === from.rank && to.unit !== from.unit && from.layer.peers === "independent")
        found.push(
          `${arrow}: ${from.unit} and ${to.unit} are both ${from.layer.name}, which never import each other`,
        );
    }
  }
  return found;
}

const order = layers.map((l) => (l.holds.length > 1 ? `{${l.holds.join(", ")}}` : l.holds[0])).join(" < ");

describe("layers", () => {
  const src = join(dirname(new URL(import.meta.url).pathname), "../src");
  const graph = importGraph(src);

  it("reads the imports of every source file", () => {
    expect(graph.size).toBeGreaterThan(50);
    // A few arrows known to exist, so a scanner that sees nothing cannot pass.
    expect(graph.get("events/write.ts")).toContain("../queue/handOver.js");
    expect(graph.get("db/schema/bus.ts")).toContain("../../domain/vocabularies.js");
    expect(graph.get("index.ts")).toContain("./runtime.js");
  });

  it("has every arrow point down (or across, within a layer that allows it)", () => {
    const found = violations(graph);
    const unexpected = found.filter((v) => !knownExceptions.some((e) => v.startsWith(e)));
    const stale = knownExceptions.filter((e) => !found.some((v) => v.startsWith(e)));
    const message = [
      ...(unexpected.length > 0
        ? [
            `Imports that break the layers (bottom to top: ${order}):`,
            ...unexpected.map((v) => `  ${v}`),
            "Move the shared piece down a layer, or pass what the lower module needs in from above.",
          ]
        : []),
      ...(stale.length > 0 ? ["Known exceptions that no longer occur (remove them):", ...stale] : []),
    ].join("\n");
    expect(unexpected.length + stale.length, message).toBe(0);
  });

  it("catches an arrow up, an arrow between capabilities and a module of no layer", () => {
    const sample = new Map([
      ["domain/rule.ts", ["../db/client.js", "./other.js"]],
      ["events/write.ts", ["../bus/local.js", "../queue/claim.js"]],
      ["bus/replay.ts", ["../ingest/receive.js", "../events/write.js"]],
      ["db/schema/bus.ts", ["../../domain/vocabularies.js", "../../config.js"]],
      ["api/app.ts", ["../config.js", "../../package.json"]],
      ["shiny/new.ts", []],
    ]);
    expect(violations(sample)).toEqual([
      "src/domain/rule.ts → ../db/client.js: domain (domain) may not import db (db, above it)",
      "src/events/write.ts → ../bus/local.js: events (events) may not import bus (capabilities, above it)",
      "src/bus/replay.ts → ../ingest/receive.js: bus and ingest are both capabilities, which never import each other",
      "src/db/schema/bus.ts → ../../config.js: db (db) may not import config.ts (config, above it)",
      "src/api/app.ts → ../../package.json: imports from outside src/",
      "src/shiny/new.ts: in no layer (add its folder to `layers` in test/layers.unit.spec.ts)",
    ]);
  });

  it("reads type-only imports, re-exports and dynamic imports too", () => {
    const text = [
      'import type { Db } from "../db/client.js";',
      'export { x } from "./x.js";',
      'const m = await import("../api/app.js");',
      'import { sql } from "drizzle-orm";',
    ].join("\n");
    expect(relativeImports(text)).toEqual(["../db/client.js", "./x.js", "../api/app.js"]);
  });
});
