import { describe, expect, it } from "vitest";
import { KnownKeys } from "../src/tenancy/knownKeys.js";

const owner = (n: number) => ({ tenantId: `t${n}`, keyId: `k${n}` });

describe("KnownKeys", () => {
  it("keeps at most its capacity, forgetting the least recently used first", () => {
    const known = new KnownKeys(2);
    known.remember("h1", owner(1));
    known.remember("h2", owner(2));
    expect(known.get("h1")).toEqual(owner(1)); // h2 is now the least recently used
    known.remember("h3", owner(3));
    expect(known.size).toBe(2);
    expect(known.get("h2")).toBeUndefined();
    expect(known.get("h1")).toEqual(owner(1));
    expect(known.get("h3")).toEqual(owner(3));
  });

  it("forgets a revoked key under every hash it was remembered by", () => {
    const known = new KnownKeys();
    known.remember("h1", owner(1));
    known.remember("h1b", owner(1));
    known.remember("h2", owner(2));
    known.forget("k1");
    expect(known.get("h1")).toBeUndefined();
    expect(known.get("h1b")).toBeUndefined();
    expect(known.get("h2")).toEqual(owner(2));
  });
});
