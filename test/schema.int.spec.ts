import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Db, query } from "../src/db/client.js";
import { classifyDbError } from "../src/db/errors.js";
import { maintainPartitions, migrate, migrateDown, readMigrations } from "../src/db/migrate.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";

/** The schema contract: the same on PGlite and on the PostgreSQL server. */

async function one<T>(db: Db, statement: string): Promise<T> {
  const rows = await query<T>(db, sql.raw(statement));
  return rows[0]!;
}

/** Everything the migrations define, read from the catalog, for comparing schemas. */
async function catalogSnapshot(db: Db) {
  const parts = await Promise.all([
    query(
      db,
      sql`select table_name, column_name, data_type, is_nullable, column_default
      from information_schema.columns where table_schema = current_schema() order by 1, 2`,
    ),
    query(
      db,
      sql`select tablename, indexname, indexdef from pg_indexes where schemaname = current_schema() order by 1, 2`,
    ),
    query(
      db,
      sql`select c.relname, con.conname, pg_get_constraintdef(con.oid) as def from pg_constraint con
      join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() order by 1, 2`,
    ),
    query(
      db,
      sql`select tablename, policyname, qual, with_check from pg_policies where schemaname = current_schema() order by 1, 2`,
    ),
    query(
      db,
      sql`select relname, relrowsecurity, relforcerowsecurity, relkind from pg_class c
      join pg_namespace n on n.oid = c.relnamespace where n.nspname = current_schema() and relkind in ('r', 'p') order by 1`,
    ),
    query(
      db,
      sql`select proname, pg_get_function_identity_arguments(p.oid) as args from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace where n.nspname = current_schema() order by 1`,
    ),
  ]);
  return parts;
}

for (const backend of backends()) {
  describe(`schema on ${backend}`, () => {
    let t: TestDatabase;
    let db: Db;
    let tenant: string;
    let other: string;
    let campaign: string;
    let subscription: string;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      db = t.database.db;
      tenant = (await one<{ id: string }>(db, "insert into tenants (name) values ('a') returning id")).id;
      other = (await one<{ id: string }>(db, "insert into tenants (name) values ('b') returning id")).id;
      campaign = (
        await one<{ id: string }>(
          db,
          `insert into contact_campaigns (tenant_id, contact_id, channel) values ('${tenant}', 'c-1', 'email') returning id`,
        )
      ).id;
      subscription = (
        await one<{ id: string }>(
          db,
          `insert into subscriptions (tenant_id, name, event_types, sink, secret)
           values ('${tenant}', 's', '{message.*}', '{"type":"webhook","url":"http://x"}', 'whsec_x') returning id`,
        )
      ).id;
    });
    afterAll(() => t?.drop());

    const uniques: [string, (ids: { tenant: string; campaign: string; subscription: string }) => string][] = [
      ["tenants.name", () => "insert into tenants (name) values ('dup')"],
      [
        "api_keys.prefix",
        (i) => `insert into api_keys (tenant_id, prefix, key_hash) values ('${i.tenant}', 'p1', 'h')`,
      ],
      [
        "email_sender_identities tenant+from_email",
        (i) => `insert into email_sender_identities (tenant_id, from_email) values ('${i.tenant}', 'a@x.io')`,
      ],
      [
        "send_rate_limits tenant+scope+key",
        (i) =>
          `insert into send_rate_limits (tenant_id, scope, key, window_seconds, max_count) values ('${i.tenant}', 'sender', 'k', 60, 10)`,
      ],
      [
        "email_validation_results tenant+email+provider",
        (i) =>
          `insert into email_validation_results (tenant_id, email, provider, result) values ('${i.tenant}', 'a@x.io', 'zb', 'valid')`,
      ],
      [
        "contact_channels tenant+contact+channel+address",
        (i) =>
          `insert into contact_channels (tenant_id, contact_id, channel, address) values ('${i.tenant}', 'c', 'sms', '+15550001')`,
      ],
      [
        "communication_suppressions (null group counts as equal)",
        (i) =>
          `insert into communication_suppressions (tenant_id, channel, address, reason) values ('${i.tenant}', 'email', 'a@x.io', 'bounce')`,
      ],
      [
        "contact_campaigns tenant+contact+channel",
        (i) =>
          `insert into contact_campaigns (tenant_id, contact_id, channel) values ('${i.tenant}', 'c-2', 'sms')`,
      ],
      [
        "campaign_plan_versions campaign+version",
        (i) =>
          `insert into campaign_plan_versions (tenant_id, campaign_id, version, plan_json, plan_hash) values ('${i.tenant}', '${i.campaign}', 1, '{}', 'h')`,
      ],
      [
        "campaign_transitions campaign+cause_key",
        (i) =>
          `insert into campaign_transitions (tenant_id, campaign_id, to_status, cause_key) values ('${i.tenant}', '${i.campaign}', 'stopped', 'bounce:1')`,
      ],
      [
        "scheduled_actions tenant+dedupe_key",
        (i) =>
          `insert into scheduled_actions (tenant_id, action_type, run_at, dedupe_key) values ('${i.tenant}', 'send', now(), 'step-1')`,
      ],
      [
        "outbound_messages tenant+dedupe_key",
        (i) =>
          `insert into outbound_messages (tenant_id, channel, provider, to_address, dedupe_key) values ('${i.tenant}', 'email', 'sendgrid', 'a@x.io', 'd1')`,
      ],
      [
        "message_event_keys tenant+hash of provider and dedupe_key",
        (i) =>
          `insert into message_event_keys (tenant_id, key_hash) values ('${i.tenant}', md5('sendgrid:k1')::uuid)`,
      ],
      [
        "event_keys tenant+event_key",
        (i) =>
          `insert into event_keys (tenant_id, event_key, event_id, ts) values ('${i.tenant}', 'k1', herald_uuidv7(), now())`,
      ],
      [
        "subscriptions tenant+name",
        (i) =>
          `insert into subscriptions (tenant_id, name, event_types, sink, secret) values ('${i.tenant}', 'dup', '{a}', '{}', 's')`,
      ],
      [
        "dead_letters outbox_id",
        (i) =>
          `insert into dead_letters (tenant_id, subscription_id, outbox_id, event_id, event_type, attempts) values ('${i.tenant}', '${i.subscription}', 42, herald_uuidv7(), 'a', 5)`,
      ],
      [
        "inbound_events tenant+channel+provider_message_id",
        (i) =>
          `insert into inbound_events (tenant_id, channel, provider, provider_message_id, payload) values ('${i.tenant}', 'sms', 'twilio', 'SM1', '{}')`,
      ],
      [
        "inbound_messages tenant+channel+provider_message_id",
        (i) =>
          `insert into inbound_messages (tenant_id, channel, provider, provider_message_id, from_address, to_address) values ('${i.tenant}', 'sms', 'twilio', 'SM1', '+1', '+2')`,
      ],
      [
        "conversations tenant+channel+participant",
        (i) =>
          `insert into conversations (tenant_id, channel, participant_address) values ('${i.tenant}', 'sms', '+15550001')`,
      ],
    ];

    const perTenant = new Set(
      uniques.map(([name]) => name).filter((n) => !/^(tenants|api_keys|campaign_|dead_letters)/.test(n)),
    );

    for (const [name, statement] of uniques) {
      it(`rejects a duplicate: ${name}`, async () => {
        const ids = { tenant, campaign, subscription };
        await db.execute(sql.raw(statement(ids)));
        const error = await db.execute(sql.raw(statement(ids))).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(classifyDbError(error)).toBe("unique_violation");
        // Rules scoped by tenant let another tenant hold the same values.
        if (perTenant.has(name)) await db.execute(sql.raw(statement({ ...ids, tenant: other })));
      });
    }

    it("sets defaults: draft campaigns, UUIDv7 ids, queue columns, message status, event positions", async () => {
      const c = await one<{ id: string; status: string; plan_json: unknown; created_at: unknown }>(
        db,
        `select id, status, plan_json, created_at from contact_campaigns where id = '${campaign}'`,
      );
      expect(c.status).toBe("draft");
      expect(c.plan_json).toEqual({});
      expect(c.created_at).toBeTruthy();
      expect(c.id[14]).toBe("7");
      const action = await one<Record<string, unknown>>(
        db,
        `insert into scheduled_actions (tenant_id, action_type, run_at) values ('${tenant}', 'send', now())
         returning status, attempts, max_attempts, locked_by, next_attempt_at`,
      );
      expect(action).toMatchObject({ status: "pending", attempts: 0, max_attempts: 5, locked_by: null });
      expect(action.next_attempt_at).toBeTruthy();
      const message = await one<{ status: string; metadata: unknown }>(
        db,
        `insert into outbound_messages (tenant_id, channel, provider, to_address) values ('${tenant}', 'email', 'sendgrid', 'x@y.z') returning status, metadata`,
      );
      expect(message).toEqual({ status: "sent", metadata: {} });
      const event = await one<{ tx: string; position: string; ts: unknown }>(
        db,
        `insert into events (tenant_id, event_type, source) values ('${tenant}', 'contact.created', 'system')
         returning transaction_id::text as tx, position::text, ts`,
      );
      expect(Number(event.tx)).toBeGreaterThan(0);
      expect(Number(event.position)).toBeGreaterThan(0);
    });

    it("cascades: deleting a campaign removes its versions, transitions and actions; a subscription its outbox", async () => {
      const c = (
        await one<{ id: string }>(
          db,
          `insert into contact_campaigns (tenant_id, contact_id, channel) values ('${tenant}', 'c-9', 'email') returning id`,
        )
      ).id;
      await db.execute(
        sql.raw(`insert into campaign_plan_versions (tenant_id, campaign_id, version, plan_json, plan_hash) values ('${tenant}', '${c}', 1, '{}', 'h');
        `),
      );
      await db.execute(
        sql.raw(
          `insert into campaign_transitions (tenant_id, campaign_id, to_status) values ('${tenant}', '${c}', 'active')`,
        ),
      );
      await db.execute(
        sql.raw(
          `insert into scheduled_actions (tenant_id, campaign_id, action_type, run_at) values ('${tenant}', '${c}', 'send', now())`,
        ),
      );
      const m = await one<{ id: string }>(
        db,
        `insert into outbound_messages (tenant_id, channel, provider, to_address, campaign_id) values ('${tenant}', 'email', 'sendgrid', 'q@y.z', '${c}') returning id`,
      );
      await db.execute(sql.raw(`delete from contact_campaigns where id = '${c}'`));
      const counts = await one<Record<string, number>>(
        db,
        `select (select count(*)::int from campaign_plan_versions where campaign_id = '${c}') as versions,
                (select count(*)::int from campaign_transitions where campaign_id = '${c}') as transitions,
                (select count(*)::int from scheduled_actions where campaign_id = '${c}') as actions,
                (select count(*)::int from outbound_messages where id = '${m.id}' and campaign_id is null) as kept_message`,
      );
      expect(counts).toEqual({ versions: 0, transitions: 0, actions: 0, kept_message: 1 });

      const s = await one<{ id: string }>(
        db,
        `insert into subscriptions (tenant_id, name, event_types, sink, secret) values ('${tenant}', 'gone', '{a}', '{}', 's') returning id`,
      );
      await db.execute(
        sql.raw(
          `insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type) values ('${tenant}', '${s.id}', herald_uuidv7(), now(), 'a')`,
        ),
      );
      await db.execute(sql.raw(`delete from subscriptions where id = '${s.id}'`));
      expect(
        (
          await one<{ n: number }>(
            db,
            `select count(*)::int as n from outbox where subscription_id = '${s.id}'`,
          )
        ).n,
      ).toBe(0);
    });

    it("cascades: deleting a tenant removes every row it owns", async () => {
      const doomed = (
        await one<{ id: string }>(db, "insert into tenants (name) values ('doomed') returning id")
      ).id;
      await db.execute(
        sql.raw(`insert into contact_campaigns (tenant_id, contact_id, channel) values ('${doomed}', 'c', 'email');
        `),
      );
      await db.execute(
        sql.raw(`insert into events (tenant_id, event_type, source) values ('${doomed}', 'a', 'system')`),
      );
      await db.execute(
        sql.raw(`insert into api_keys (tenant_id, prefix, key_hash) values ('${doomed}', 'zz', 'h')`),
      );
      await db.execute(
        sql.raw(
          `insert into message_events (tenant_id, provider, dedupe_key, type, event_at, payload) values ('${doomed}', 'sendgrid', 'd1', 'open', now(), '{}')`,
        ),
      );
      await db.execute(
        sql.raw(
          `insert into message_event_keys (tenant_id, key_hash) values ('${doomed}', md5('sendgrid:d1')::uuid)`,
        ),
      );
      const source = (
        await one<{ id: string }>(
          db,
          `insert into webhook_sources (tenant_id, provider, name) values ('${doomed}', 'sendgrid', 'doomed') returning id`,
        )
      ).id;
      await db.execute(
        sql.raw(
          `insert into webhook_deliveries (tenant_id, source_id, provider, headers, body) values ('${doomed}', '${source}', 'sendgrid', '{}', '\\x5b5d')`,
        ),
      );
      await db.execute(
        sql.raw(
          `insert into communication_suppressions (tenant_id, channel, address, reason) values ('${doomed}', 'email', 'a@example.com', 'bounce')`,
        ),
      );
      for (const [table, column] of [
        ["event_rollups", "hour"],
        ["event_rollups_daily", "day"],
        ["event_rollups_monthly", "month"],
      ])
        await db.execute(
          sql.raw(
            `insert into ${table} (tenant_id, ${column}, event_type, source, count) values ('${doomed}', '2026-11-01T00:00:00Z', 'a', 'system', 1)`,
          ),
        );
      await db.execute(sql.raw(`delete from tenants where id = '${doomed}'`));
      const left = await one<{ n: number }>(
        db,
        `select ((select count(*) from contact_campaigns where tenant_id = '${doomed}') +
                 (select count(*) from events where tenant_id = '${doomed}') +
                 (select count(*) from api_keys where tenant_id = '${doomed}') +
                 (select count(*) from message_events where tenant_id = '${doomed}') +
                 (select count(*) from message_event_keys where tenant_id = '${doomed}') +
                 (select count(*) from webhook_sources where tenant_id = '${doomed}') +
                 (select count(*) from webhook_deliveries where tenant_id = '${doomed}') +
                 (select count(*) from communication_suppressions where tenant_id = '${doomed}') +
                 (select count(*) from event_rollups where tenant_id = '${doomed}') +
                 (select count(*) from event_rollups_daily where tenant_id = '${doomed}') +
                 (select count(*) from event_rollups_monthly where tenant_id = '${doomed}'))::int as n`,
      );
      expect(left.n).toBe(0);
    });

    it("partitions events and message_events by month: this month and the next two exist", async () => {
      const rows = await query<{ name: string }>(
        db,
        sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
            join pg_class p on p.oid = i.inhparent where p.relname in ('events', 'message_events') order by 1`,
      );
      const month = (offset: number) => {
        const d = new Date();
        const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
        return `${m.getUTCFullYear()}_${String(m.getUTCMonth() + 1).padStart(2, "0")}`;
      };
      for (const table of ["events", "message_events"]) {
        for (const offset of [0, 1, 2])
          expect(rows.map((r) => r.name)).toContain(`${table}_${month(offset)}`);
      }
    });

    it("keeps the previous, current and next two months of partitions around any date", async () => {
      await maintainPartitions(db, new Date("2031-05-15T12:00:00Z"));
      const rows = await query<{ name: string }>(
        db,
        sql`select relname as name from pg_class where relkind = 'r' and relname ~ '^(message_)?events_2031_[0-9]{2}$' order by 1`,
      );
      expect(rows.map((r) => r.name)).toEqual([
        "events_2031_04",
        "events_2031_05",
        "events_2031_06",
        "events_2031_07",
        "message_events_2031_04",
        "message_events_2031_05",
        "message_events_2031_06",
        "message_events_2031_07",
      ]);
      await maintainPartitions(db, new Date("2031-05-15T12:00:00Z")); // again: nothing to do, no error
    });

    it("migrations up → down → up give the same schema", async () => {
      const fresh = await createTestDatabase(backend);
      try {
        const before = await catalogSnapshot(fresh.database.db);
        const steps = readMigrations().length;
        const down = await migrateDown(fresh.database.db, steps);
        expect(down.applied).toHaveLength(steps);
        const empty = await query<{ n: number }>(
          fresh.database.db,
          sql`select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = current_schema() and c.relkind in ('r', 'p') and c.relname <> 'herald_migrations'`,
        );
        expect(empty[0]!.n).toBe(0);
        const up = await migrate(fresh.database.db);
        expect(up.applied).toHaveLength(steps);
        expect(await catalogSnapshot(fresh.database.db)).toEqual(before);
        expect((await migrate(fresh.database.db)).applied).toEqual([]);
      } finally {
        await fresh.drop();
      }
    });
  });
}
