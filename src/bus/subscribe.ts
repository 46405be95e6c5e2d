import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { EventHandler, HandlerRegistry } from "./sinks/handlers.js";
import { newSecret } from "./subscriptions.js";

export interface SubscribeOptions {
  tenantId: string;
  /** Subscription name, unique per tenant; also the handler's name in the registry. */
  name: string;
  /** Exact types, prefixes (`message.*`) or `*`. */
  patterns: string[];
  handler: EventHandler;
  ordered?: boolean;
  maxAttempts?: number;
}

/**
 * Subscribe an in-process handler: creates or updates the tenant's subscription (sink `handler`) and
 * registers the function in this process. Call it at start-up in every process that runs the dispatcher.
 */
export async function subscribe(
  executor: Executor,
  registry: HandlerRegistry,
  options: SubscribeOptions,
): Promise<string> {
  const sink = JSON.stringify({ type: "handler", name: options.name });
  const patterns = `{${options.patterns.map((p) => JSON.stringify(p)).join(",")}}`;
  const [row] = await query<{ id: string }>(
    executor,
    sql`insert into subscriptions (tenant_id, name, event_types, sink, secret, ordered, max_attempts)
    values (${options.tenantId}, ${options.name}, ${patterns}::text[], ${sink}::jsonb, ${newSecret()},
      ${options.ordered ?? false}, ${options.maxAttempts ?? 5})
    on conflict (tenant_id, name) do update set event_types = excluded.event_types, sink = excluded.sink,
      ordered = excluded.ordered, max_attempts = excluded.max_attempts, updated_at = now()
    returning id`,
  );
  registry.register(options.name, options.handler);
  return row!.id;
}
