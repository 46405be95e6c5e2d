import type { Command } from "commander";
import type { Db } from "../db/client.js";
import { retryInbound } from "../inbound/retry.js";

type WithDatabase = <T>(work: (db: Db) => Promise<T>) => Promise<T>;

const positiveInteger = (value: string, previous: number[] = []): number[] => {
  if (!/^[1-9]\d{0,18}$/.test(value)) throw new Error(`--id: "${value}" is not an inbound event id`);
  return [...previous, Number(value)];
};

/** `herald inbound retry`. */
export function registerInboundCommands(program: Command, withDatabase: WithDatabase) {
  const inbound = program.command("inbound").description("inbound messages and their worker");
  inbound
    .command("retry")
    .description("give dead inbound events fresh attempts (all of a tenant's, or those named by --id)")
    .requiredOption("--tenant <id>", "tenant id")
    .option("--id <inbound event id>", "only this one (repeatable)", positiveInteger)
    .action(async (o: { tenant: string; id?: number[] }) => {
      const retried = await withDatabase((db) => retryInbound(db, o.tenant, o.id));
      process.stdout.write(`${retried.length} dead inbound events queued again\n`);
    });
}
