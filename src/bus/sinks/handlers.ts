import type { StoredEvent } from "../../events/types.js";
import type { Delivery } from "../delivery.js";

/** An in-process subscriber: throw to have the delivery retried. */
export type EventHandler = (event: StoredEvent, delivery: Delivery) => Promise<void> | void;

/**
 * In-process handlers by subscription sink name. A dispatcher claims deliveries of handler subscriptions only
 * for the names registered in its process: the others wait, pending, for a process that has them (`herald
 * serve` has none, so it never takes them from an application running `subscribe`).
 */
export class HandlerRegistry {
  private readonly handlers = new Map<string, EventHandler>();

  register(name: string, handler: EventHandler): void {
    this.handlers.set(name, handler);
  }

  unregister(name: string): void {
    this.handlers.delete(name);
  }

  names(): string[] {
    return [...this.handlers.keys()];
  }

  async deliver(name: string, delivery: Delivery): Promise<void> {
    const handler = this.handlers.get(name);
    if (!handler) throw new Error(`no handler named "${name}" is registered in this process`);
    await handler(delivery.event, delivery);
  }
}
