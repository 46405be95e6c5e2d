import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import type { Db } from "../db/client.js";
import { rebuildRollups } from "../events/rollups.js";

type WithDatabase = <T>(work: (db: Db) => Promise<T>) => Promise<T>;

/** `herald rollups rebuild`. */
export function registerRollupCommands(program: Command, withDatabase: WithDatabase) {
  const rollups = program.command("rollups").description("the event rollups behind totals and stats");
  rollups
    .command("rebuild")
    .description("count the whole event log into the rollups again (with a progress bar)")
    .action(async () => {
      const bar = new SingleBar({
        format: "rollups [{bar}] {value}/{total} events | {rate} events/s",
        hideCursor: true,
        // Not a terminal (a log, a CI job): the same line every 10 s instead of redrawing.
        noTTYOutput: true,
        notTTYSchedule: 10_000,
      });
      const started = Date.now();
      let shown = false;
      const { read } = await withDatabase((db) =>
        rebuildRollups(db, (done, total) => {
          const rate = Math.round(done / Math.max((Date.now() - started) / 1000, 0.001));
          if (!shown) {
            bar.start(total, done, { rate });
            shown = true;
          }
          // Events written during the rebuild are counted too.
          if (done > bar.getTotal()) bar.setTotal(done);
          bar.update(done, { rate });
        }).finally(() => {
          // Also on failure: the bar hides the cursor until it is stopped.
          if (shown) bar.stop();
        }),
      );
      process.stdout.write(
        `rollups rebuilt: ${read} events counted in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    });
}
