import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { errorCatalogue } from "../src/errors.js";

/** The README's error table and the code's catalogue must list the same codes and statuses. */
describe("error catalogue", () => {
  it("matches the README", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const documented = Object.fromEntries(
      [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]),
    );
    const inCode = Object.fromEntries(
      Object.entries(errorCatalogue).map(([code, { status }]) => [code, status]),
    );
    expect(documented).toEqual(inCode);
  });
});
