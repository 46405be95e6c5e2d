import { describe, expect, it } from "vitest";
import { ByteBuilder } from "../src/events/export/bytes.js";

describe("export helpers", () => {
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
