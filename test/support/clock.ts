import type { Clock } from "../../src/domain/clock.js";

/**
 * Wall time plus an offset a test moves forward: a slow sink "takes" its time by advancing the clock, so
 * leases run out without the test sleeping, while real time still moves for timers and the database.
 */
export class SteppingClock implements Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }
}
