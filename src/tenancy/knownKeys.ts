import type { KeyOwner } from "./apiKeys.js";

/**
 * API keys this process has authenticated, by their hash: a request presenting one skips the lookup. A key
 * from memory is only a claim until its liveness is confirmed — a revocation may have come from any process
 * since — and the API confirms it within the request (see `api/auth.ts`). Bounded: the least recently used
 * key goes first.
 */
export class KnownKeys {
  private readonly owners = new Map<string, KeyOwner>();

  constructor(private readonly capacity = 10_000) {}

  get(hash: string): KeyOwner | undefined {
    const owner = this.owners.get(hash);
    if (owner !== undefined) {
      // Map order is insertion order: moving it to the end keeps the least recently used first.
      this.owners.delete(hash);
      this.owners.set(hash, owner);
    }
    return owner;
  }

  remember(hash: string, owner: KeyOwner): void {
    this.owners.delete(hash);
    this.owners.set(hash, owner);
    if (this.owners.size > this.capacity) this.owners.delete(this.owners.keys().next().value!);
  }

  /** Forget a key found revoked. */
  forget(keyId: string): void {
    for (const [hash, owner] of this.owners) if (owner.keyId === keyId) this.owners.delete(hash);
  }

  get size(): number {
    return this.owners.size;
  }
}
