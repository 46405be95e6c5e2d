import type { AuthContext } from "../../src/providers/types.js";

/**
 * An authentication context for unit tests of provider modules: a fixed or real clock, and a replay record
 * in memory (the database's is tested through the webhook route).
 */
export function authContext(now: () => Date = () => new Date()): AuthContext & { used: Map<string, Date> } {
  const used = new Map<string, Date>();
  return {
    now,
    used,
    // No network in unit tests: a test that needs an SNS certificate gives its own context.
    certificate: async (url) => {
      throw new Error(`no certificate for ${url} in this test`);
    },
    async firstUse(token, expiresAt) {
      const until = used.get(token);
      if (until && until >= now()) return false;
      used.set(token, expiresAt);
      return true;
    },
  };
}
