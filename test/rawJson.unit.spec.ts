import { describe, expect, it } from "vitest";
import { jsonWithRaw, RawJson } from "../src/domain/rawJson.js";

describe("jsonWithRaw", () => {
  it("writes each raw value as its exact text, and everything else as JSON.stringify does", () => {
    const raw = '{"z":1,  "a":12345678901234567890123,"s":"\\u00e9 ✓"}';
    const value = {
      events: [
        { id: 1, payload: new RawJson(raw), note: "a \u0000 nul" },
        { id: 2, payload: new RawJson("[ 1,2 ]") },
      ],
      other: { n: null },
    };
    const text = jsonWithRaw(value);
    expect(text).toBe(
      `{"events":[{"id":1,"payload":${raw},"note":"a \\u0000 nul"},{"id":2,"payload":[ 1,2 ]}],"other":{"n":null}}`,
    );
    expect(JSON.parse(text).events[0].payload.z).toBe(1);
  });

  it("cannot be fooled by a string that looks like its token", () => {
    const value = { a: "\u0000deadbeefdeadbeef:0\u0000", b: new RawJson('{"x":1}') };
    expect(JSON.parse(jsonWithRaw(value))).toEqual({ a: value.a, b: { x: 1 } });
  });

  it("parses a raw value for any other serializer", () => {
    expect(JSON.stringify({ p: new RawJson('{"b":2, "a":1}') })).toBe('{"p":{"b":2,"a":1}}');
  });
});
