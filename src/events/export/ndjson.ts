import type { StoredEvent } from "../types.js";
import { exportRow } from "./columns.js";
import type { ExportEncoder } from "./encoder.js";

/** Newline-delimited JSON: one event per line, its fields in the export columns' order. */
export function ndjsonEncoder(): ExportEncoder {
  return {
    start: () => undefined,
    batch(events: StoredEvent[]) {
      let text = "";
      for (const event of events) text += `${JSON.stringify(exportRow(event))}\n`;
      return Buffer.from(text, "utf8");
    },
    end: () => undefined,
  };
}
