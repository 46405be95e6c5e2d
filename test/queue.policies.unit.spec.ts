import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AckBatcher, type PendingFailure } from "../src/queue/ackBatcher.js";
import { ClaimLoop } from "../src/queue/claimLoop.js";
import { ConcurrencyPolicy } from "../src/queue/concurrency.js";
import type { QueueRow } from "../src/queue/row.js";
import type { YieldTo } from "../src/queue/yieldTo.js";

const row = (id: number, orderingKey: string | null = null) =>
  ({ id, attempts: 1, locked_until: "", ordering_key: orderingKey }) as unknown as QueueRow;
const failure = (r: QueueRow): PendingFailure => ({
  row: r,
  failure: { id: r.id, attempts: 1, error: "boom", delayMs: 1000 },
});

/** A batcher whose writes are recorded, and held until released. */
function batcher(ackDelayMs = 250) {
  const writes: { completing: number[]; failing: number[]; done: () => void }[] = [];
  let running = true;
  const acks = new AckBatcher({
    ackDelayMs,
    running: () => running,
    write: (completing, failing) =>
      new Promise<void>((done) =>
        writes.push({ completing: completing.map((r) => r.id), failing: failing.map((f) => f.row.id), done }),
      ),
  });
  return {
    acks,
    writes,
    stop: () => {
      running = false;
    },
  };
}

describe("ack batcher", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("writes at once outside a trickle, and batches what finishes during a write into the next", async () => {
    const { acks, writes } = batcher();
    acks.complete(row(1));
    expect(writes.map((w) => w.completing)).toEqual([[1]]);
    acks.complete(row(2));
    acks.fail(failure(row(3)));
    expect(writes).toHaveLength(1); // never two writes at once
    writes[0]!.done();
    await vi.advanceTimersByTimeAsync(0);
    expect(writes.map((w) => [w.completing, w.failing])).toEqual([
      [[1], []],
      [[2], [3]],
    ]);
  });

  it("holds completions up to ackDelayMs in a trickle; failures and ordered rows go at once", async () => {
    const { acks, writes } = batcher(250);
    acks.trickle = true;
    acks.complete(row(1));
    await vi.advanceTimersByTimeAsync(249);
    expect(writes).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(writes.map((w) => w.completing)).toEqual([[1]]);
    writes[0]!.done();
    await vi.advanceTimersByTimeAsync(0);

    acks.complete(row(2));
    acks.complete(row(3, "key"));
    expect(writes.map((w) => w.completing)).toEqual([[1], [2, 3]]);
    writes[1]!.done();
    await vi.advanceTimersByTimeAsync(0);
    acks.fail(failure(row(4)));
    expect(writes.map((w) => w.failing)).toEqual([[], [], [4]]);
  });

  it("drains everything when the worker stops, waiting rows included", async () => {
    const { acks, writes, stop } = batcher(10_000);
    acks.trickle = true;
    acks.complete(row(1));
    stop();
    const drained = acks.drain();
    expect(writes.map((w) => w.completing)).toEqual([[1]]);
    acks.complete(row(2)); // a handler finishing while the first write runs
    writes[0]!.done();
    await vi.advanceTimersByTimeAsync(0);
    expect(writes.map((w) => w.completing)).toEqual([[1], [2]]);
    writes[1]!.done();
    await drained;
    expect(acks.pending).toBe(0);
  });
});

describe("concurrency policy", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A foreground whose spell began at `since` (fake time), or idle. */
  function foreground() {
    let since: number | undefined;
    const idle = new Set<() => void>();
    const yieldTo: YieldTo = {
      get busy() {
        return since !== undefined;
      },
      busyFor: () => (since === undefined ? 0 : Date.now() - since),
      whenIdle: (listener) => {
        idle.add(listener);
        return () => idle.delete(listener);
      },
    };
    return {
      yieldTo,
      begin: () => {
        since = Date.now();
      },
      end: () => {
        since = undefined;
        for (const l of [...idle]) l();
        idle.clear();
      },
      listeners: () => idle.size,
    };
  }

  it("is the full concurrency without a foreground, or while it is idle", () => {
    const onResume = vi.fn();
    expect(new ConcurrencyPolicy({ concurrency: 8, maxYieldMs: 100, onResume }).limit()).toBe(8);
    const fg = foreground();
    const policy = new ConcurrencyPolicy({ concurrency: 8, yieldTo: fg.yieldTo, maxYieldMs: 100, onResume });
    expect(policy.limit()).toBe(8);
    expect(policy.heldBack()).toBe(false);
    expect(onResume).not.toHaveBeenCalled();
  });

  it("steps through a busy spell: none, then one for three times as long, then all, resuming at each step", async () => {
    const fg = foreground();
    const onResume = vi.fn();
    const policy = new ConcurrencyPolicy({ concurrency: 8, yieldTo: fg.yieldTo, maxYieldMs: 100, onResume });
    fg.begin();
    expect(policy.limit()).toBe(0);
    expect(policy.heldBack()).toBe(true);
    expect(fg.listeners()).toBe(1); // one resume arranged, however often asked
    await vi.advanceTimersByTimeAsync(100);
    expect(onResume).toHaveBeenCalledTimes(1);
    expect(fg.listeners()).toBe(0);
    expect(policy.limit()).toBe(1);
    await vi.advanceTimersByTimeAsync(300);
    expect(onResume).toHaveBeenCalledTimes(2);
    expect(policy.limit()).toBe(8);
  });

  it("resumes when the foreground goes idle, and forgets the resume when cancelled", async () => {
    const fg = foreground();
    const onResume = vi.fn();
    const policy = new ConcurrencyPolicy({ concurrency: 4, yieldTo: fg.yieldTo, maxYieldMs: 100, onResume });
    fg.begin();
    expect(policy.limit()).toBe(0);
    fg.end();
    expect(onResume).toHaveBeenCalledTimes(1);
    expect(policy.limit()).toBe(4);

    fg.begin();
    expect(policy.limit()).toBe(0);
    policy.cancel();
    expect(fg.listeners()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(onResume).toHaveBeenCalledTimes(1);
  });
});

describe("claim loop", () => {
  /** A loop over a fake queue of `due` rows; claims resolve when the test says so. */
  function loop(options: { due: number; batchSize?: number; parallelClaims?: number; room?: number }) {
    let due = options.due;
    let nextId = 1;
    const claims: { limit: number; resolve: () => void }[] = [];
    const got: number[] = [];
    let held = false;
    const claimLoop = new ClaimLoop({
      batchSize: options.batchSize ?? 10,
      parallelClaims: options.parallelClaims ?? 2,
      running: () => true,
      room: () => options.room ?? 100,
      holdClaims: () => held,
      claim: (limit) =>
        new Promise<QueueRow[]>((resolve) =>
          claims.push({
            limit,
            resolve: () => {
              const n = Math.min(limit, due);
              due -= n;
              resolve(Array.from({ length: n }, () => row(nextId++)));
            },
          }),
        ),
      onRows: (rows) => {
        got.push(rows.length);
      },
      onError: () => undefined,
    });
    return {
      claimLoop,
      claims,
      got,
      hold: (h: boolean) => {
        held = h;
      },
    };
  }

  it("remembers a wake-up that finds every claim slot taken, and claims again after", async () => {
    const { claimLoop, claims, got } = loop({ due: 3, parallelClaims: 1 });
    claimLoop.wake();
    claimLoop.wake();
    expect(claims.map((c) => c.limit)).toEqual([10]);
    expect(claimLoop.claimAgain).toBe(true);
    claims[0]!.resolve();
    await claimLoop.settled();
    expect(got).toEqual([3]);
    expect(claimLoop.backlog).toBe(false);
    // The remembered wake-up: one more claim, which finds the queue empty.
    expect(claims).toHaveLength(2);
    claims[1]!.resolve();
    await claimLoop.settled();
    expect(got).toEqual([3, 0]);
    expect(claims).toHaveLength(2);
  });

  it("claims whole batches in parallel while backed up, until the queue runs dry", async () => {
    const { claimLoop, claims, got } = loop({ due: 25, batchSize: 10, parallelClaims: 2, room: 20 });
    claimLoop.wake();
    claims[0]!.resolve();
    await claimLoop.settled();
    // A full batch: backed up, so the loop claims again, in parallel up to the room it has.
    expect(claimLoop.backlog).toBe(true);
    expect(claims.map((c) => c.limit)).toEqual([10, 10, 10]);
    claims[1]!.resolve();
    claims[2]!.resolve();
    await claimLoop.settled();
    await claimLoop.settled();
    expect(got).toEqual([10, 10, 5]);
    expect(claimLoop.backlog).toBe(false);
  });

  it("holds claims while the handlers are held back, and remembers the wake-up", () => {
    const { claimLoop, claims, hold } = loop({ due: 5 });
    hold(true);
    claimLoop.wake();
    expect(claims).toHaveLength(0);
    expect(claimLoop.claimAgain).toBe(true);
    hold(false);
    claimLoop.wake();
    expect(claims).toHaveLength(1);
  });

  it("does not claim without room", () => {
    const { claimLoop, claims } = loop({ due: 5, room: 0 });
    claimLoop.wake();
    expect(claims).toHaveLength(0);
    expect(claimLoop.claimAgain).toBe(true);
  });
});
