/** Herald as a library: the database, the event log, the bus and the claim engine. */
export { type AppDeps, buildApp } from "./api/app.js";
export * from "./bus/index.js";
export { type Config, loadConfig } from "./config.js";
export { type Database, type Db, type Executor, openDatabase, type Tx } from "./db/client.js";
export { migrate, migrateDown } from "./db/migrate.js";
export * as schema from "./db/schema/index.js";
export { withTenant } from "./db/tenant.js";
export { errorCatalogue, HeraldError } from "./errors.js";
export type { EventFilter } from "./events/filter.js";
export {
  countEventsByContact,
  countEventsBySession,
  findEventsByContact,
  findEventsBySession,
  findEventsByType,
  findEventsInRange,
} from "./events/find.js";
export {
  type EventOrder,
  fold,
  type ReadOptions,
  type ReadPage,
  type ReadPosition,
  readEvents,
  streamEvents,
} from "./events/query.js";
export { getEvent as findEvent, type LogPosition, logStart, readLog } from "./events/read.js";
export {
  projectRollups,
  RollupProjection,
  type RollupProjectionOptions,
  rebuildRollups,
} from "./events/rollups.js";
export { eventStats, type StatsBucket, type StatsDimension } from "./events/stats.js";
export {
  countEvents,
  type EventTotals,
  eventTotals,
} from "./events/totals.js";
export type { NewEvent, StoredEvent, WriteResult } from "./events/types.js";
export { type WriteOptions, writeEvent as saveEvent, writeEvent, writeEvents } from "./events/write.js";
export { claimBatch } from "./queue/claim.js";
export { completeBatch } from "./queue/complete.js";
export type { QueueDefinition } from "./queue/definitions.js";
export { enqueue, notifyQueue } from "./queue/enqueue.js";
export { failBatch } from "./queue/fail.js";
export { type LocalDispatcher, LocalHandOver } from "./queue/handOver.js";
export { reapExpired } from "./queue/reap.js";
export { releaseBatch } from "./queue/release.js";
export { Worker } from "./queue/worker.js";
export type { WorkerEvents, WorkerHandler, WorkerOptions } from "./queue/workerOptions.js";
export { serve, startWorkers } from "./runtime.js";
export {
  cancelScheduledAction,
  getScheduledAction,
  listScheduledActions,
  type NewScheduledAction,
  type ScheduledActionView,
  scheduleAction,
} from "./scheduler/actions.js";
export { createSchedulerWorker, type SchedulerWorkerOptions } from "./scheduler/processor.js";
export {
  builtInActions,
  type ScheduledActionHandler,
  type ScheduledActionRegistry,
  type ScheduledRun,
  scheduledActionRegistry,
} from "./scheduler/registry.js";
