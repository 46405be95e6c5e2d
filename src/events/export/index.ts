export { type ExportColumn, exportColumns } from "./columns.js";
export { csvField } from "./csv.js";
export {
  type ExportEncoder,
  type ExportFormat,
  exportEncoder,
  exportFormats,
  exportMedia,
} from "./encoder.js";
export {
  type BatchReader,
  ExportAbortedError,
  type ExportOptions,
  type ExportResult,
  exportEvents,
} from "./exportEvents.js";
export { type ExportRecord, readExportBatch } from "./read.js";
