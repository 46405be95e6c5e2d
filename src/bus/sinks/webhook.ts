import { createHmac } from "node:crypto";
import { publicEvent } from "../../events/columns.js";
import { type Delivery, messageId } from "../delivery.js";

/** Standard Webhooks v1: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}", keyed by the secret after `whsec_`. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const mac = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

export interface WebhookOptions {
  /** @defaultValue 10000 */
  timeoutMs?: number;
  /** Unix time in seconds; injectable for tests. */
  nowSeconds?: () => number;
}

export class WebhookError extends Error {
  override name = "WebhookError";
}

/** POST the event, signed; any 2xx is success, anything else (or no answer in time) throws and is retried. */
export async function sendWebhook(
  url: string,
  delivery: Delivery,
  options: WebhookOptions = {},
): Promise<void> {
  const id = messageId(delivery);
  const timestamp = Math.floor(options.nowSeconds?.() ?? Date.now() / 1000);
  const body = JSON.stringify({
    type: delivery.event.event_type,
    timestamp: delivery.event.timestamp,
    data: publicEvent(delivery.event),
  });
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      headers: {
        "content-type": "application/json",
        "user-agent": "Herald-Webhooks/1",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(delivery.subscription.secret, id, timestamp, body),
      },
      body,
    });
  } catch (error) {
    const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new WebhookError(`POST ${url} failed: ${cause}`);
  }
  const text = await response.text().catch(() => "");
  if (response.status < 200 || response.status >= 300) {
    throw new WebhookError(`POST ${url} answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`);
  }
}
