#!/usr/bin/env node
import { Command, InvalidArgumentError } from "commander";
import { ConfigError, loadConfig, variables } from "../config.js";
import type { Db } from "../db/client.js";
import { DatabaseTooNewError, MigrationMismatchError, migrate, migrateDown } from "../db/migrate.js";
import { openConfiguredDatabases, serve, work } from "../runtime.js";
import { createTenant, listTenants } from "../tenancy/tenants.js";
import { registerBusCommands } from "./bus.js";
import { registerExportCommand } from "./export.js";
import { boundHeapGrowth } from "./heap.js";
import { registerInboundCommands } from "./inbound.js";
import { registerPartitionCommands } from "./partitions.js";
import { registerArchiveCommands } from "./partitionsArchive.js";
import { registerRollupCommands } from "./rollups.js";

const environmentHelp = `\nEnvironment variables:\n${variables
  .map((v) => {
    const range = v.min === undefined ? "" : `, ${v.min} to ${v.max}`;
    const details = v.default ? ` (default: ${v.default}${range})` : range ? ` (${range.slice(2)})` : "";
    return `  ${v.name.padEnd(30)} ${v.description}${details}`;
  })
  .join("\n")}\n`;

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a whole number ≥ 1");
  return n;
};

/** Open the databases, run `task` with the system handle, close. */
async function withDatabase<T>(task: (db: Db) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { app, system } = await openConfiguredDatabases(config);
  try {
    return await task(system.db);
  } finally {
    await app.close();
    if (system !== app) await system.close();
  }
}

const program = new Command()
  .name("herald")
  .description("Herald: the event backbone for products that send email and SMS")
  .addHelpText("after", environmentHelp)
  .showHelpAfterError();

/** Run until SIGTERM/SIGINT, then stop gracefully; a second signal exits at once. */
function runUntilSignal(stop: () => Promise<void>) {
  // The workers' timers are unref'd and PGlite holds no socket: without this, `herald worker` on the embedded
  // database would find nothing left to wait for and exit at once.
  setInterval(() => {}, 2 ** 30);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

program
  .command("serve")
  .description("migrate, then run the HTTP API and the workers")
  .action(async () => {
    boundHeapGrowth(100);
    const server = await serve(loadConfig());
    runUntilSignal(server.stop);
  });

program
  .command("worker")
  .description("migrate, then run only the workers (no HTTP)")
  .action(async () => {
    boundHeapGrowth(100);
    const workers = await work(loadConfig());
    runUntilSignal(workers.stop);
  });

program
  .command("migrate")
  .description("apply pending migrations (safe to run from several processes at once)")
  .option("--down <steps>", "revert the last N migrations instead", positiveInt)
  .action(async (options: { down?: number }) => {
    const result = await withDatabase((db) => (options.down ? migrateDown(db, options.down) : migrate(db)));
    const verb = options.down ? "reverted" : "applied";
    process.stdout.write(
      result.applied.length > 0
        ? `${verb}: ${result.applied.join(", ")}\n`
        : `nothing to ${options.down ? "revert" : "apply"}\n`,
    );
  });

const tenants = program.command("tenants").description("manage tenants");
tenants
  .command("create")
  .argument("<name>", "tenant name")
  .description("create a tenant and print its first API key")
  .action(async (name: string) => {
    const { tenant, apiKey } = await withDatabase(async (db) => {
      await migrate(db);
      return createTenant(db, name);
    });
    process.stdout.write(`tenant ${tenant.name} ${tenant.id}\napi key (shown once): ${apiKey}\n`);
  });
tenants
  .command("list")
  .description("list tenants")
  .action(async () => {
    const rows = await withDatabase((db) => listTenants(db));
    for (const t of rows) process.stdout.write(`${t.id}  ${t.name}  ${t.createdAt.toISOString()}\n`);
  });

registerBusCommands(program, withDatabase);
registerRollupCommands(program, withDatabase);
registerInboundCommands(program, withDatabase);
registerExportCommand(program, withDatabase);
registerArchiveCommands(registerPartitionCommands(program, withDatabase), program);

program.parseAsync().catch((error: unknown) => {
  // Errors an operator fixes from their message alone: printed as they are, no prefix or stack.
  if (
    error instanceof ConfigError ||
    error instanceof MigrationMismatchError ||
    error instanceof DatabaseTooNewError
  ) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`herald: ${reasonOf(error)}\n`);
  }
  process.exit(1);
});

/**
 * What went wrong, in the database's words where it was the database: Drizzle wraps a failed statement in an
 * error whose message is the statement and its parameters, its cause the server's answer.
 */
function reasonOf(error: unknown): string {
  let reason = error;
  while (reason instanceof Error && reason.cause instanceof Error) reason = reason.cause;
  return reason instanceof Error ? reason.message : String(reason);
}
