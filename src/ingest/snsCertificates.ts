import { readFileSync } from "node:fs";
import https from "node:https";

/**
 * What the SES module needs from the network, kept here in the ingest layer (provider modules stay pure): SNS
 * signing certificates, fetched over HTTPS and cached, and the visit to a `SubscribeURL` that confirms a
 * subscription. Both only ever see URLs the module has checked are SNS's own (`providers/snsSignature.ts`).
 */

export interface HttpsGetOptions {
  /** Whole request, connection to last byte. @defaultValue 5000 */
  timeoutMs?: number;
  /** Largest body read; past it the request fails. @defaultValue 65536 */
  maxBytes?: number;
}

/** GET an `https://` URL: its body as text when the answer is 200, else a rejection saying why. */
export function httpsGetText(url: string, { timeoutMs = 5000, maxBytes = 65_536 }: HttpsGetOptions = {}) {
  return new Promise<string>((resolve, reject) => {
    if (!url.startsWith("https://")) {
      reject(new Error("only https:// URLs are fetched"));
      return;
    }
    const request = https.get(url, { timeout: timeoutMs, headers: { accept: "*/*" } }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`${url} answered ${response.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          request.destroy(new Error(`${url} is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      response.on("error", reject);
    });
    // `timeout` is the socket's idle time; the whole request gets the same bound.
    const deadline = setTimeout(
      () => request.destroy(new Error(`${url} took over ${timeoutMs} ms`)),
      timeoutMs,
    );
    request.on("timeout", () => request.destroy(new Error(`${url} took over ${timeoutMs} ms`)));
    request.on("error", reject);
    request.on("close", () => clearTimeout(deadline));
  });
}

export interface SnsCertificateOptions {
  /**
   * `HERALD_SNS_CERTIFICATE_FILE`: a PEM certificate verified against instead of fetching (a host without
   * outbound HTTPS, or tests). The module still checks each message's `SigningCertURL`.
   */
  file?: string | undefined;
  /** How a certificate is fetched. @defaultValue `httpsGetText` */
  fetch?: (url: string) => Promise<string>;
  /** How long a fetched certificate is kept. @defaultValue 86400000 (a day: SNS rotates them rarely, under a new URL) */
  ttlMs?: number;
  /** How long a failed fetch is remembered (a bad URL on SNS's host is not asked for on every request). @defaultValue 60000 */
  failureTtlMs?: number;
  /** Certificates kept at once (SNS has a few per region). @defaultValue 100 */
  maxEntries?: number;
  now?: () => number;
}

const pemPattern = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/**
 * The `certificate` of an authentication context: by URL, fetched once and kept (concurrent requests for one
 * URL share a fetch), or the operator's file. Only a PEM certificate is accepted.
 */
export function snsCertificates(options: SnsCertificateOptions = {}): (url: string) => Promise<string> {
  const {
    file,
    fetch = (url: string) => httpsGetText(url),
    ttlMs = 86_400_000,
    failureTtlMs = 60_000,
    maxEntries = 100,
    now = Date.now,
  } = options;
  if (file) {
    const match = pemPattern.exec(readFileSync(file, "utf8"));
    if (!match) throw new Error(`${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    const pem = match[0];
    return async () => pem;
  }
  const cache = new Map<string, { until: number; pem: Promise<string> }>();
  return (url) => {
    const at = now();
    const cached = cache.get(url);
    if (cached && cached.until > at) return cached.pem;
    if (cache.size >= maxEntries) {
      for (const [key, entry] of cache) if (entry.until <= at) cache.delete(key);
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    }
    const pem = fetch(url).then((text) => {
      const match = pemPattern.exec(text);
      if (!match) throw new Error(`${url} is not a PEM certificate`);
      return match[0];
    });
    const entry = { until: at + ttlMs, pem };
    cache.set(url, entry);
    pem.catch(() => {
      entry.until = Math.min(entry.until, now() + failureTtlMs);
    });
    return pem;
  };
}

/** Confirm an SNS subscription: GET its `SubscribeURL` (SNS answers 200 with the subscription's ARN). */
export const visitSubscribeUrl = async (url: string): Promise<void> => {
  await httpsGetText(url, { maxBytes: 65_536 });
};
