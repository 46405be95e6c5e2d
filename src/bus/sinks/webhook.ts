import { createHmac } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { publicEvent } from "../../events/columns.js";
import { type Delivery, messageId } from "../delivery.js";
import { checkDestination, type DestinationPolicy, denyAll, guardedLookup } from "./destination.js";

/** Standard Webhooks v1: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}", keyed by the secret after `whsec_`. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const mac = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

export interface WebhookOptions {
  /** The whole request: connecting, sending, and reading the answer. @defaultValue 10000 */
  timeoutMs?: number;
  /** Unix time in seconds; injectable for tests. */
  nowSeconds?: () => number;
  /** Where the request may connect. @defaultValue `denyAll`: public addresses only */
  destinations?: DestinationPolicy;
}

export class WebhookError extends Error {
  override name = "WebhookError";
}

/** Most of an answer's body that is read (for the error message); a longer one costs its connection. */
const maxAnswerBytes = 64 * 1024;

interface Agents {
  http: HttpAgent;
  https: HttpsAgent;
}

/** Keep-alive agents per policy, dialling through its guarded resolver. */
const agentsByPolicy = new WeakMap<DestinationPolicy, Agents>();
function agentsFor(policy: DestinationPolicy): Agents {
  let agents = agentsByPolicy.get(policy);
  if (!agents) {
    const lookup = guardedLookup(policy);
    agents = {
      http: new HttpAgent({ keepAlive: true, lookup }),
      https: new HttpsAgent({ keepAlive: true, lookup }),
    };
    agentsByPolicy.set(policy, agents);
  }
  return agents;
}

/**
 * POST the event, signed; any 2xx is success, anything else (a 3xx too: redirects are never followed, or a
 * sink could bounce Herald to an internal address) or no answer in time throws and is retried.
 */
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
  const headers = {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    "user-agent": "Herald-Webhooks/1",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signWebhook(delivery.subscription.secret, id, timestamp, body),
  };
  let answer: Answer;
  try {
    answer = await post(
      new URL(url),
      headers,
      body,
      options.destinations ?? denyAll,
      options.timeoutMs ?? 10_000,
    );
  } catch (error) {
    const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new WebhookError(`POST ${url} failed: ${cause}`);
  }
  if (answer.status < 200 || answer.status >= 300) {
    const redirect = answer.status >= 300 && answer.status < 400 ? " (redirects are not followed)" : "";
    const text = answer.text ? `: ${answer.text.slice(0, 200)}` : "";
    throw new WebhookError(`POST ${url} answered ${answer.status}${redirect}${text}`);
  }
}

interface Answer {
  status: number;
  text: string;
}

/** One POST through the policy's agents; settles once: answered, failed, or timed out. */
function post(
  target: URL,
  headers: Record<string, string>,
  body: string,
  policy: DestinationPolicy,
  timeoutMs: number,
): Promise<Answer> {
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    return Promise.reject(new Error(`${target.protocol} URLs are not delivered to (http or https only)`));
  }
  // Node dials IP literals without calling the agent's lookup: they are checked here.
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  try {
    if (isIP(host)) checkDestination(host, policy);
  } catch (error) {
    return Promise.reject(error);
  }
  const https = target.protocol === "https:";
  const agents = agentsFor(policy);
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const settle = (done: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done();
    };
    const request = (https ? httpsRequest : httpRequest)(target, {
      method: "POST",
      agent: https ? agents.https : agents.http,
      headers,
    });
    const timer = setTimeout(() => {
      settle(() => reject(new Error(`no answer within ${timeoutMs} ms`)));
      request.destroy();
    }, timeoutMs);
    request.on("error", (error) => settle(() => reject(error)));
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const answer = () => ({
        status: response.statusCode ?? 0,
        text: Buffer.concat(chunks).toString("utf8").slice(0, maxAnswerBytes),
      });
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= maxAnswerBytes) {
          // Enough to judge and report: the rest is not waited for (nor the connection reused).
          settle(() => resolve(answer()));
          response.destroy();
        }
      });
      response.on("end", () => settle(() => resolve(answer())));
      response.on("error", (error) => settle(() => reject(error)));
      response.on("close", () => settle(() => reject(new Error("connection closed mid-answer"))));
    });
    request.end(body);
  });
}
