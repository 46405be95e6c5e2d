import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { v7 as uuidv7 } from "uuid";
import { retryDeadLetters } from "../bus/deadLetters.js";
import { checkIntegrity } from "../bus/integrity.js";
import { replayEvents } from "../bus/replay.js";
import { getSubscription } from "../bus/subscriptions.js";
import type { Db } from "../db/client.js";
import { reprocess } from "../ingest/reprocess.js";

type WithDatabase = <T>(work: (db: Db) => Promise<T>) => Promise<T>;

const dayMs = 86_400_000;

function parseDate(value: string, endOfDay: boolean): Date {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00.000Z`) : new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new Error(`"${value}" is not a date (use 2026-10-01 or an ISO timestamp)`);
  return endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(date.getTime() + dayMs) : date;
}

/** `herald replay`, `herald dead-letters retry`, `herald reprocess`, `herald integrity`. */
export function registerBusCommands(program: Command, withDatabase: WithDatabase) {
  program
    .command("replay")
    .description("deliver stored events to a subscription again (one day per step, with a progress bar)")
    .requiredOption("--tenant <id>", "tenant id")
    .requiredOption("--subscription <id>", "subscription id")
    .option("--start <date>", "from this date or time (inclusive)")
    .option("--end <date>", "up to this date or time (a date includes the whole day)")
    .option("--type <pattern...>", "only these event types (message.*)")
    .option("--correlation <id>", "only events with this correlation id")
    .action(
      async (o: {
        tenant: string;
        subscription: string;
        start?: string;
        end?: string;
        type?: string[];
        correlation?: string;
      }) => {
        await withDatabase(async (db) => {
          if (!(await getSubscription(db, o.tenant, o.subscription)))
            throw new Error("no such subscription for that tenant");
          const start = o.start ? parseDate(o.start, false) : undefined;
          const end = o.end ? parseDate(o.end, true) : new Date();
          const replayId = uuidv7();
          const filter = {
            tenantId: o.tenant,
            subscriptionId: o.subscription,
            eventTypes: o.type,
            correlationId: o.correlation,
            replayId,
          };
          if (!start) {
            const { events } = await replayEvents(db, { ...filter, end });
            process.stdout.write(`replay ${replayId}: ${events} events queued\n`);
            return;
          }
          const steps = Math.max(1, Math.ceil((end.getTime() - start.getTime()) / dayMs));
          const bar = new SingleBar({
            format: "replay [{bar}] {value}/{total} days | {events} events",
            hideCursor: true,
          });
          bar.start(steps, 0, { events: 0 });
          let total = 0;
          for (let from = start.getTime(); from < end.getTime(); from += dayMs) {
            const to = Math.min(from + dayMs, end.getTime());
            total += (await replayEvents(db, { ...filter, start: new Date(from), end: new Date(to) })).events;
            bar.increment(1, { events: total });
          }
          bar.stop();
          process.stdout.write(`replay ${replayId}: ${total} events queued\n`);
        });
      },
    );

  program
    .command("dead-letters")
    .description("retry dead letters: all of a tenant's, or those of one subscription or event type")
    .argument("<action>", "retry")
    .requiredOption("--tenant <id>", "tenant id")
    .option("--subscription <id>", "only this subscription")
    .option("--type <event type>", "only this event type")
    .option("--id <dead letter id>", "only this dead letter")
    .action(
      async (action: string, o: { tenant: string; subscription?: string; type?: string; id?: string }) => {
        if (action !== "retry") throw new Error(`unknown action "${action}" (use: retry)`);
        const retried = await withDatabase((db) =>
          retryDeadLetters(db, o.tenant, { subscriptionId: o.subscription, eventType: o.type, id: o.id }),
        );
        process.stdout.write(`${retried} dead letters sent back to their subscriptions\n`);
      },
    );

  program
    .command("reprocess")
    .description("run webhook processing again from the archived deliveries of a source (idempotent)")
    .requiredOption("--source <id>", "webhook source id")
    .option("--since <date>", "received on or after")
    .option("--until <date>", "received before (a date includes the whole day)")
    .option("--status <status>", "only deliveries in this queue status (pending, completed, dead)")
    .action(
      async (o: {
        source: string;
        since?: string;
        until?: string;
        status?: "pending" | "completed" | "dead";
      }) => {
        if (o.status && !["pending", "completed", "dead"].includes(o.status))
          throw new Error("--status is pending, completed or dead");
        const bar = new SingleBar({
          format: "reprocess [{bar}] {value}/{total} deliveries | {stored} events stored",
          hideCursor: true,
          // Not a terminal (a log, a CI job): the same line every 10 s instead of redrawing.
          noTTYOutput: true,
          notTTYSchedule: 10_000,
        });
        let started = false;
        const result = await withDatabase((db) =>
          reprocess(
            db,
            {
              sourceId: o.source,
              since: o.since ? parseDate(o.since, false) : undefined,
              until: o.until ? parseDate(o.until, true) : undefined,
              status: o.status,
            },
            (done, total, stored) => {
              if (!started) {
                bar.start(total, 0, { stored: 0 });
                started = true;
              }
              bar.update(done, { stored });
            },
          ).finally(() => {
            // Also on failure: the bar hides the cursor until it is stopped.
            if (started) bar.stop();
          }),
        );
        process.stdout.write(
          `reprocessed ${result.deliveries} deliveries: ${result.stored} events were missing and are now stored\n`,
        );
        if (result.failed.length > 0) {
          for (const f of result.failed) process.stderr.write(`delivery ${f.id} failed again: ${f.error}\n`);
          process.stderr.write(
            `herald: ${result.failed.length} deliveries failed; the others were processed\n`,
          );
          process.exitCode = 1;
        }
      },
    );

  program
    .command("integrity")
    .description(
      "check the event log and outbox: duplicate keys, positions against commit order, orphan rows",
    )
    .option("--tenant <id>", "only this tenant")
    .action(async (o: { tenant?: string }) => {
      const report = await withDatabase((db) => checkIntegrity(db, o.tenant));
      for (const check of report.checks) {
        process.stdout.write(
          `${check.count === 0 ? "ok  " : "FAIL"} ${check.name}: ${check.count}${check.samples.length ? ` (${check.samples.join(", ")})` : ""}\n`,
        );
      }
      if (!report.ok) process.exitCode = 2;
    });
}
