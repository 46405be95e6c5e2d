/** The whole Drizzle schema, one file per area. */
export * from "./archives.js";
export * from "./bus.js";
export * from "./campaigns.js";
export * from "./columns.js";
export * from "./contacts.js";
export * from "./conversations.js";
export * from "./messages.js";
export * from "./relations.js";
export * from "./rollups.js";
export * from "./senders.js";
export * from "./tenancy.js";
export type * from "./types.js";
