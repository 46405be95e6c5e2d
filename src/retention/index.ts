/** Retention: archive, verify and drop months past `HERALD_RETENTION_MONTHS`; import archives back. */
export * from "./archive.js";
export * from "./files.js";
export * from "./import.js";
export * from "./schedule.js";
