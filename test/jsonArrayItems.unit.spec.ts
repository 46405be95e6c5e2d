import { describe, expect, it } from "vitest";
import { jsonArrayItems } from "../src/domain/jsonArrayItems.js";

const slices = (text: string | Buffer) => {
  const body = typeof text === "string" ? Buffer.from(text) : text;
  return jsonArrayItems(body)?.map((r) => body.subarray(r.offset, r.offset + r.length).toString());
};

describe("jsonArrayItems", () => {
  it("gives each value of the array as its exact bytes, whatever the whitespace, nesting and strings", () => {
    const text = ` \n[ {"a": [1, {"b": "x,]}"}], "c" : "q\\"uote\\\\"} ,\r\n  {"n":1e400,"big":12345678901234567890} ,"s", 7, true,null,[ ]\t]  `;
    expect(slices(text)).toEqual([
      `{"a": [1, {"b": "x,]}"}], "c" : "q\\"uote\\\\"}`,
      `{"n":1e400,"big":12345678901234567890}`,
      `"s"`,
      "7",
      "true",
      "null",
      "[ ]",
    ]);
  });

  it("counts bytes, not characters, past a byte order mark and multi-byte text", () => {
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(`[{"name":"Zoë 🙂"},{"x":"é"}]`),
    ]);
    expect(slices(body)).toEqual([`{"name":"Zoë 🙂"}`, `{"x":"é"}`]);
    const values = slices(body)!.map((s) => JSON.parse(s));
    expect(values).toEqual(JSON.parse(body.subarray(3).toString()));
  });

  it("finds the same values JSON.parse finds in a SendGrid-like batch", () => {
    const events = Array.from({ length: 50 }, (_, i) => ({
      email: `u${i}@example.com`,
      event: i % 2 ? "open" : "delivered",
      category: ["a", "b,c"],
      unique_args: { nested: { deep: [i, "]"] } },
    }));
    const text = JSON.stringify(events, null, 3);
    expect(slices(text)!.map((s) => JSON.parse(s))).toEqual(events);
  });

  it("is undefined for what is not an array, or not a whole one", () => {
    for (const text of ['{"a":1}', "", "   ", "[1,2", "[1,,2]", "[1,]", '["open]']) {
      expect(jsonArrayItems(Buffer.from(text)), text).toBeUndefined();
    }
    expect(slices("[]")).toEqual([]);
  });
});
