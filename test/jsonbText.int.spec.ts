import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { unstorableEscape, unstorableNumber } from "../src/domain/jsonbText.js";
import { parseBatch } from "../src/providers/sendgrid.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";

/** The door's jsonb checks, each case judged by the database itself: they must agree with it exactly. */

const numbers = (): string[] => {
  const cases: string[] = [];
  const wholes = ["0", "1", "12", "1234", "99999"];
  const fractions = [
    undefined,
    "0",
    "00",
    "1",
    "01",
    "0".repeat(16383),
    `${"0".repeat(16382)}1`,
    "1".repeat(16384),
  ];
  const exponents = [undefined, "0", "-0", "+5", "131068", "131069", "131071", "131072", "131073", "0131071"]
    .concat(["-16382", "-16383", "-16384", "+16383", "999999", "1073741822", "-1073741824"])
    .concat(["2147483648", "99999999999999999999"]);
  for (const whole of wholes)
    for (const fraction of fractions)
      for (const exponent of exponents)
        cases.push(
          `${whole}${fraction === undefined ? "" : `.${fraction}`}${exponent === undefined ? "" : `E${exponent}`}`,
        );
  return cases.concat([
    `1${"0".repeat(131071)}`,
    `1${"0".repeat(131072)}`,
    "-1e131071",
    "-1e131072",
    "1.5e-3",
  ]);
};

const escapes = [
  "\\u0000",
  "a\\u0000b",
  "\\\\u0000",
  "\\\\\\u0000",
  "\\ud83d\\ude00",
  "\\ud83d",
  "\\ude00",
  "\\ud83d\\u0041",
  "\\ud83dx\\ude00",
  "\\u0041\\u00e9",
];

for (const backend of backends()) {
  describe(`jsonb text checks on ${backend}`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await createTestDatabase(backend);
    });
    afterAll(() => t.drop());

    /** Whether the database refuses the text as jsonb. */
    const refused = async (text: string) => {
      try {
        await query(t.database.db, sql`select ${text}::text::jsonb is not null as ok`);
        return false;
      } catch {
        return true;
      }
    };

    it("refuses exactly the numbers numeric overflows, wherever they sit, and not a number inside a string", async () => {
      const cases = numbers();
      const disagreements: string[] = [];
      let refusedCount = 0;
      for (const number of cases) {
        const text = `[{"n":${number}}]`;
        const database = await refused(text);
        if (database) refusedCount++;
        // The exact check, and the door's, which reads the text only where parsed values call for it.
        if (unstorableNumber(text) !== database || parseBatch(Buffer.from(text)).ok === database)
          disagreements.push(number.length > 40 ? `${number.slice(0, 30)}…(${number.length})` : number);
      }
      expect(disagreements).toEqual([]);
      // Both answers occur: the cases reach across the limits.
      expect(refusedCount).toBeGreaterThan(50);
      expect(cases.length - refusedCount).toBeGreaterThan(50);
      // An exponent of 2^30 - 1 on zero: PostgreSQL 15 refuses it, 17 takes it; refused on every version.
      expect(unstorableNumber("[0e1073741823]")).toBe(true);
      // A repeated key: JSON.parse keeps the last value, PostgreSQL converts both.
      for (const text of ['[{"n":1e131072,"n":1}]', '[{"n":1e-16384,"n":1}]']) {
        expect(await refused(text)).toBe(true);
        expect(unstorableNumber(text)).toBe(true);
        expect(parseBatch(Buffer.from(text)).ok).toBe(false);
      }
      // The same digits as text are fine.
      expect(unstorableNumber('[{"n":"1e131072","m":"\\"1e-16384"}]')).toBe(false);
    });

    it("refuses exactly the escapes jsonb cannot hold", async () => {
      for (const sequence of escapes) {
        const text = `[{"s":"${sequence}"}]`;
        expect(unstorableEscape(text), sequence).toBe(await refused(text));
      }
    });
  });
}
