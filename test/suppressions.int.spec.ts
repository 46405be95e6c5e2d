import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { backends } from "./support/databases.js";
import { ingestHarness } from "./support/ingestHarness.js";

/**
 * Suppressions created and lifted by provider events.
 */
for (const backend of backends()) {
  describe(`suppressions from events on ${backend}`, () => {
    const k = ingestHarness(backend);
    const { tenantWithSource, post, processAll } = k;

    it("ends a group suppression at the later of unsubscribe and resubscribe, whatever the arrival order", async () => {
      const group = (event: string, n: number) => ({
        email: "gus@example.com",
        event,
        asm_group_id: 7,
        timestamp: 1763800000 + n * 100,
        sg_event_id: `group-${event}-${n}`,
        sg_message_id: "Gq1pA7nTQ8uR2cWm4vYbZg.filter0001",
      });
      // Unsubscribe at t1, resubscribe at t2, unsubscribe again at t3: suppressed, by the t3 unsubscribe.
      const events = [
        group("group_unsubscribe", 1),
        group("group_resubscribe", 2),
        group("group_unsubscribe", 3),
      ];
      const orders = [
        [[0], [1], [2]],
        [[0], [2], [1]],
        [[1], [0], [2]],
        [[1], [2], [0]],
        [[2], [0], [1]],
        [[2], [1], [0]],
        [[0, 1, 2]],
        [[2, 1], [0]],
      ];
      const finals = [];
      for (const [run, order] of orders.entries()) {
        const a = await tenantWithSource(`groups-${run}`);
        for (const batch of order) {
          await post(a.url, JSON.stringify(batch.map((i) => events[i])));
          await processAll();
        }
        const rows = await query<{ reason: string; group_id: number; event: string | null }>(
          k.t.database.db,
          sql`select s.reason, s.group_id, m.provider_event_id as event from communication_suppressions s
            left join message_events m on m.id = s.source_event_id
            where s.tenant_id = ${a.tenantId} and s.address = 'gus@example.com'`,
        );
        finals.push(rows);
      }
      const suppressedByLatest = [
        { reason: "group_unsubscribe", group_id: 7, event: "group-group_unsubscribe-3" },
      ];
      expect(finals).toEqual(orders.map(() => suppressedByLatest));
    });
  });
}
