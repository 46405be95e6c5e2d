export { type ExportColumn, exportColumns } from "./columns.js";
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
export { type BatchRow, type ExportBatch, readExportRows, readExportText } from "./read.js";
