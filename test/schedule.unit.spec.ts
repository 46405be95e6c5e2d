import { describe, expect, it } from "vitest";
import { parseCron, parseEvery, planSlot, ScheduleError, slotAfter } from "../src/domain/schedule.js";

const at = (s: string) => new Date(s);

describe("schedule rules", () => {
  it.each([
    ["PT5M", 300_000],
    ["PT1S", 1000],
    ["PT1.5S", 1500],
    ["P1D", 86_400_000],
    ["P1W", 7 * 86_400_000],
    ["P1DT12H", 36 * 3600_000],
    ["PT1H30M", 90 * 60_000],
    ["300", 300_000],
    [90, 90_000],
  ] as const)("reads every %s", (every, ms) => {
    expect(parseEvery(every)).toBe(ms);
  });

  it.each([
    "P1M",
    "P1Y",
    "PT",
    "P",
    "5m",
    "PT0S",
    "0",
    "PT0.5S",
    "P400D",
    "-5",
    "1e3",
    "",
  ])("refuses every %j", (every) => {
    expect(() => parseEvery(every)).toThrow(ScheduleError);
  });

  it.each([
    ["60 * * * *", "cron"],
    ["* * * *", "cron"],
    ["0 0 * * * *", "cron"],
    ["@daily", "cron"],
    ["0 3 * * *", "time_zone", "Nowhere/Else"],
  ])("refuses cron %j", (expression, field, zone = "UTC") => {
    expect(() => parseCron(expression, zone)).toThrow(expect.objectContaining({ field }));
  });

  it("puts `every` slots at whole intervals from the anchor", () => {
    const s = { everyMs: 60_000 };
    const anchor = at("2026-01-01T00:00:00Z");
    expect(slotAfter(s, at("2026-01-01T00:00:00Z"), anchor)).toEqual(at("2026-01-01T00:01:00Z"));
    expect(slotAfter(s, at("2026-01-01T00:10:30Z"), anchor)).toEqual(at("2026-01-01T00:11:00Z"));
    expect(slotAfter(s, at("2026-01-01T00:11:00Z"), anchor)).toEqual(at("2026-01-01T00:12:00Z"));
  });

  it("reads cron in its time zone, OR-ing day of month and day of week as cron does", () => {
    const ny = { cron: parseCron("0 9 * * 1", "America/New_York") };
    expect(slotAfter(ny, at("2026-03-06T00:00:00Z"))).toEqual(at("2026-03-09T13:00:00Z")); // EDT from 8 March
    const either = { cron: parseCron("0 0 13 * 5") };
    expect(slotAfter(either, at("2026-02-01T00:00:00Z"))).toEqual(at("2026-02-06T00:00:00Z"));
  });

  it("plans a slot: on time runs and goes on; missed skips or runs once, then the next slot to come", () => {
    const s = { everyMs: 60_000 };
    const slot = at("2026-01-01T00:01:00Z");
    expect(planSlot(s, slot, at("2026-01-01T00:01:59Z"), "skip")).toEqual({
      run: true,
      next: at("2026-01-01T00:02:00Z"),
    });
    expect(planSlot(s, slot, at("2026-01-01T00:09:30Z"), "skip")).toEqual({
      run: false,
      next: at("2026-01-01T00:10:00Z"),
    });
    expect(planSlot(s, slot, at("2026-01-01T00:09:30Z"), "run_once")).toEqual({
      run: true,
      next: at("2026-01-01T00:10:00Z"),
    });
  });
});
