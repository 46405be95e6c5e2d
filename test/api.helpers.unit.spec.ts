import { describe, expect, it } from "vitest";
import { pageOf } from "../src/api/paging.js";
import { rangeEnd, rangeStart, timeRange } from "../src/api/ranges.js";
import { EventType, EventTypePattern } from "../src/api/schemas.js";
import { HeraldError } from "../src/errors.js";

describe("time ranges of the API", () => {
  it("reads a date as its whole day (UTC) and a time as itself", () => {
    expect(rangeStart("2026-03-01").toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(rangeEnd("2026-03-01").toISOString()).toBe("2026-03-02T00:00:00.000Z");
    expect(rangeEnd("2026-03-01T10:00:00Z").toISOString()).toBe("2026-03-01T10:00:00.000Z");
  });

  it("refuses a range that ends before it starts, at the end's field", () => {
    const refusal = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return error instanceof HeraldError
          ? { code: error.code, detail: error.message, errors: error.errors }
          : error;
      }
      return undefined;
    };
    expect(
      refusal(() =>
        timeRange("2026-03-02", "2026-03-01T12:00:00Z", { in: "body", from: "start", to: "end" }),
      ),
    ).toEqual({
      code: "validation_failed",
      detail: "start must be before end",
      errors: [{ path: "/body/end", message: "must be after start" }],
    });
    // An exclusive range is empty when both ends are the same instant; an inclusive one is not.
    const at = "2026-03-01T12:00:00Z";
    expect(refusal(() => timeRange(at, at, { in: "body", from: "start", to: "end" }))).toMatchObject({
      code: "validation_failed",
    });
    expect(timeRange(at, at, { in: "querystring", from: "since", to: "until", inclusive: true }).to).toEqual(
      new Date(at),
    );
    expect(
      refusal(() =>
        timeRange(at, "2026-03-01T11:00:00Z", {
          in: "querystring",
          from: "since",
          to: "until",
          inclusive: true,
        }),
      ),
    ).toEqual({
      code: "validation_failed",
      detail: "since must not be after until",
      errors: [{ path: "/querystring/until", message: "must not be before since" }],
    });
    expect(timeRange(undefined, "2026-03-01", { in: "body", from: "start", to: "end" })).toEqual({
      from: undefined,
      to: new Date("2026-03-02T00:00:00.000Z"),
    });
  });
});

describe("paging and event-type schemas", () => {
  it("pages 50 at a time unless asked", () => {
    expect(pageOf({})).toEqual({ limit: 50, cursor: undefined });
    expect(pageOf({ limit: 5, cursor: "c" })).toEqual({ limit: 5, cursor: "c" });
  });

  it("accepts exact event types, and patterns with a trailing wildcard where patterns are allowed", () => {
    const exact = new RegExp(EventType.pattern ?? "");
    const pattern = new RegExp(EventTypePattern.pattern ?? "");
    for (const type of ["message.delivered", "a", "a_b.c1"]) {
      expect(exact.test(type)).toBe(true);
      expect(pattern.test(type)).toBe(true);
    }
    for (const p of ["*", "message.*"]) {
      expect(exact.test(p)).toBe(false);
      expect(pattern.test(p)).toBe(true);
    }
    for (const bad of ["", "Message", "a..b", "a.", ".a", "*.a", "a.*.b", "a*"]) {
      expect(exact.test(bad)).toBe(false);
      expect(pattern.test(bad)).toBe(false);
    }
  });
});
