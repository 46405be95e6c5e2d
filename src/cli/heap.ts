import { setFlagsFromString } from "node:v8";

/**
 * Let V8's old generation grow to `percent` % above what its last full collection found live before it
 * collects again. Left to itself, V8 lets it grow to up to four times the live size: under ingestion a
 * `herald serve` with ~35–40 MB live peaked at 253–264 MB of RSS, mostly garbage waiting for a collection,
 * and at 185–193 MB with 100 %, at the same events/s (`npm run bench:ingest`). V8 reads the factor at each
 * collection. A `node` started with its own `--heap-growing-percent` keeps it.
 */
export function boundHeapGrowth(percent: number): void {
  if (process.execArgv.some((arg) => arg.startsWith("--heap-growing-percent"))) return;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
