// Fails when the Drizzle schema and the committed migrations disagree: drizzle-kit generates into a
// copy of drizzle/ and must find nothing to do.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
// drizzle-kit resolves `out` relative to the working directory, so the copy lives inside the repository.
const work = mkdtempSync(join(root, ".drift-"));
function check() {
  const out = join(work, "drizzle");
  cpSync(join(root, "drizzle"), out, { recursive: true });
  const config = join(work, "drizzle.config.mjs");
  writeFileSync(
    config,
    `export default ${JSON.stringify({ dialect: "postgresql", schema: "./src/db/schema/index.ts", out: `./${relative(root, out)}` })};\n`,
  );
  const before = readdirSync(out).length;
  const output = execFileSync(
    join(root, "node_modules/.bin/drizzle-kit"),
    ["generate", "--config", config, "--name", "drift"],
    {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const added = readdirSync(out).filter((f) => f.includes("drift"));
  if (added.length > 0 || readdirSync(out).length !== before) {
    console.error(
      "Schema drift: src/db/schema differs from the committed migrations. Run `npm run db:generate`, add the down step in drizzle/down/, and commit.",
    );
    process.exitCode = 1;
    return;
  }
  if (!output.includes("No schema changes")) {
    console.error(`drizzle-kit did not confirm the schema:\n${output}`);
    process.exitCode = 1;
    return;
  }
  console.log("No drift: the committed migrations match the schema.");
}

try {
  check();
} finally {
  rmSync(work, { recursive: true, force: true });
}
