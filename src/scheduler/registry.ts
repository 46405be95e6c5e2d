import type { Tx } from "../db/client.js";
import { emitEvents } from "./emitEvent.js";

/** One slot of a scheduled action, as its handler gets it. */
export interface ScheduledRun {
  /** The action's id (the API's). */
  actionId: string;
  tenantId: string;
  action: string;
  payload: Record<string, unknown>;
  /** The slot's time (a one-off's `run_at`). */
  slot: Date;
  /** Whether the action repeats (`every` or `cron`). */
  repeating: boolean;
  /** This slot's attempt, from 1. */
  attempt: number;
}

/**
 * What an action does when due: it gets the runs of its action due together and the transaction that
 * completes them — its writes commit with them or not at all, so a slot's effects happen once. Throwing
 * fails them all; each is then retried alone, with back-off, until its attempts are used up (dead).
 */
export type ScheduledActionHandler = (tx: Tx, runs: readonly ScheduledRun[]) => Promise<void>;

/** Handlers by action name: what the worker runs, and what the API accepts. */
export type ScheduledActionRegistry = Readonly<Record<string, ScheduledActionHandler>>;

/** Built in: `emit_event` appends its payload (an event as for `POST /api/v1/events`) to the log. */
export const builtInActions: ScheduledActionRegistry = { emit_event: emitEvents };

/** An action name: lower case letters, digits, `_`, `.`, `:` and `-`, starting with a letter. */
export const actionNamePattern = /^[a-z][a-z0-9_.:-]{0,99}$/;

/** The built-in actions and the application's own (which may not take a built-in name). */
export function scheduledActionRegistry(handlers: ScheduledActionRegistry = {}): ScheduledActionRegistry {
  for (const name of Object.keys(handlers)) {
    if (!actionNamePattern.test(name))
      throw new Error(`scheduled action name "${name}" must match ${actionNamePattern}`);
    if (name in builtInActions) throw new Error(`scheduled action "${name}" is built in`);
  }
  return { ...builtInActions, ...handlers };
}
