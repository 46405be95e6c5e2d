import { describe, expect, it } from "vitest";
import { linesToBuffer } from "../src/events/export/bytes.js";

describe("export helpers", () => {
  it("writes lines into one buffer of exactly their UTF-8 size", () => {
    const lines = ["abc\n", "日本語 🎉\r\n", "x".repeat(5000), "", "é\n"];
    expect(linesToBuffer(lines)?.equals(Buffer.from(lines.join(""), "utf8"))).toBe(true);
    expect(linesToBuffer([])).toBeUndefined();
    expect(linesToBuffer([""])).toBeUndefined();
  });
});
