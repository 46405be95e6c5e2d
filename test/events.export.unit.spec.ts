import { describe, expect, it } from "vitest";
import { ByteBuilder } from "../src/events/export/bytes.js";
import { isoFormatter } from "../src/events/export/columns.js";
import { csvField } from "../src/events/export/csv.js";

describe("export helpers", () => {
  it("formats times exactly as toISOString does, across days, years and odd milliseconds", () => {
    const format = isoFormatter();
    const samples = [0, 1, 999, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29, 23, 59, 59, 999)];
    let t = Date.UTC(2026, 9, 1);
    for (let i = 0; i < 5000; i++) {
      t += Math.floor(Math.random() * 40_000_000);
      samples.push(t);
    }
    samples.push(Date.UTC(1969, 11, 31, 23, 59, 59, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999));
    for (const ms of samples) expect(format(ms)).toBe(new Date(ms).toISOString());
  });

  it("quotes CSV fields per RFC 4180 and tells null from the empty string", () => {
    expect(csvField(null)).toBe("");
    expect(csvField("")).toBe('""');
    expect(csvField("plain")).toBe("plain");
    expect(csvField(12)).toBe("12");
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(csvField("cr\r")).toBe('"cr\r"');
    expect(csvField(" spaced ")).toBe(" spaced ");
  });

  it("gathers text into the same bytes whatever the chunk size", () => {
    const parts = ["abc", "日本語 🎉", "x".repeat(50), "", "é"];
    const expected = Buffer.from(parts.join(""), "utf8");
    for (const chunkBytes of [1, 4, 16, 1 << 20]) {
      const builder = new ByteBuilder(chunkBytes);
      for (const p of parts) builder.add(p);
      expect(builder.take()?.equals(expected)).toBe(true);
      expect(builder.take()).toBeUndefined();
    }
  });
});
