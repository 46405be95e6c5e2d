import { createHash, createHmac } from "node:crypto";
import { parse as parseQuerystring, stringify as stringifyQuerystring } from "node:querystring";
import { secretsEqual } from "../domain/apiKey.js";
import { type FormParams, formParams } from "./twilioForm.js";

/**
 * `X-Twilio-Signature`: the HMAC of the URL Twilio called and the form parameters, keyed with the source's
 * auth token, checked as twilio-node's `validateRequest` checks it (ports, URL normalizations, `bodySHA256`).
 */

type HashName = "sha1" | "sha256";

/**
 * The hash a request is signed with, from `X-Twilio-Webhooks-Signature-Settings` (`algorithm=`): HMAC-SHA1
 * when it is absent or names none (the Auth Token signature), or undefined when it names one Herald does not
 * know (refused, as the official validator refuses it).
 */
export function signatureHash(settingsHeader: string | undefined): HashName | undefined {
  let algorithm = "HMAC_SHA1";
  for (const part of (settingsHeader ?? "").split(",")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === "algorithm" && part.slice(eq + 1).trim())
      algorithm = part.slice(eq + 1).trim();
  }
  const upper = algorithm.toUpperCase();
  return upper === "HMAC_SHA1" ? "sha1" : upper === "HMAC_SHA256" ? "sha256" : undefined;
}

/**
 * The signature Twilio computes: base64 of the HMAC, keyed with the auth token, of the URL followed by each
 * parameter sorted by name (code-unit order), as name then value; a name given several values contributes
 * each distinct value, sorted (as twilio-node does). A JSON body's request has no parameters: the URL alone.
 */
export function expectedSignature(
  authToken: string,
  url: string,
  params: FormParams,
  hash: HashName = "sha1",
): string {
  let data = url;
  for (const name of [...params.keys()].sort()) {
    for (const value of [...new Set(params.get(name))].sort()) data += name + value;
  }
  return createHmac(hash, authToken).update(data, "utf8").digest("base64");
}

/** The URL's parts, split without normalizing it (the path and query keep the characters Twilio signed). */
function splitUrl(url: string) {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (!match) return undefined;
  const [prefix, scheme, authority] = match as unknown as [string, string, string];
  const userInfoEnd = authority.lastIndexOf("@");
  const hostAndPort = authority.slice(userInfoEnd + 1);
  // A colon starts the port only after an IPv6 literal's closing bracket.
  const portStart = hostAndPort.indexOf(":", hostAndPort.lastIndexOf("]") + 1);
  return {
    scheme,
    userInfo: authority.slice(0, userInfoEnd + 1),
    host: portStart === -1 ? hostAndPort : hostAndPort.slice(0, portStart),
    port: portStart === -1 ? "" : hostAndPort.slice(portStart),
    rest: url.slice(prefix.length),
  };
}

function withoutPort(url: string): string {
  const p = splitUrl(url);
  return p ? p.scheme + p.userInfo + p.host + p.rest : url;
}

function withPort(url: string): string {
  const p = splitUrl(url);
  if (!p || p.port) return url;
  return p.scheme + p.userInfo + p.host + (p.scheme.toLowerCase() === "https://" ? ":443" : ":80") + p.rest;
}

/** The query re-encoded as Node's legacy `querystring` does (some back ends signed an escaped form). */
function withLegacyQuery(url: string): string {
  const q = url.indexOf("?");
  if (q === -1 || q === url.length - 1) return url;
  return `${url.slice(0, q)}?${stringifyQuerystring(parseQuerystring(url.slice(q + 1)))}`;
}

/**
 * The URLs a signature may be over, in the official validator's order (twilio-node `validateRequest`): the
 * URL as received without and with the default port (Twilio signs whichever the webhook was configured
 * with, and some proxies add or drop `:443`), then the same for the URL as WHATWG normalizes it, and those
 * with the query in the legacy encoding.
 */
export function candidateUrls(url: string): string[] {
  const urls = [withoutPort(url), withPort(url)];
  let normalized: string | undefined;
  try {
    normalized = new URL(url).toString();
  } catch {
    normalized = undefined;
  }
  if (normalized !== undefined) {
    const bare = withoutPort(normalized);
    const ported = withPort(normalized);
    urls.push(bare, ported, withLegacyQuery(bare), withLegacyQuery(ported));
  }
  return [...new Set(urls)];
}

/** The `bodySHA256` of a request's URL (a JSON body's hash), if it carries one. */
function bodyHashOf(url: string): string | undefined {
  try {
    return new URL(url).searchParams.get("bodySHA256") ?? undefined;
  } catch {
    return undefined;
  }
}

/** What a request's signature is checked on. */
export interface SignedRequest {
  /** The URL Twilio called, query included. */
  url: string;
  body: Buffer;
  /** `X-Twilio-Signature`. */
  signature: string;
  /** `X-Twilio-Webhooks-Signature-Settings`, if sent. */
  signatureSettings?: string | undefined;
}

/**
 * Whether Twilio signed the request with `authToken`. A form body's parameters are signed with the URL; a
 * JSON body is not (its URL carries `bodySHA256`, the hex SHA-256 of the body, and the signature is over the
 * URL alone). False for anything malformed (never throws).
 */
export function verifySignature(authToken: string, request: SignedRequest): boolean {
  const hash = signatureHash(request.signatureSettings);
  if (!hash || request.signature.length === 0 || request.signature.length > 200) return false;
  const bodyHash = bodyHashOf(request.url);
  let params: FormParams;
  if (bodyHash !== undefined) {
    const actual = createHash("sha256").update(request.body).digest("hex");
    if (!secretsEqual(bodyHash, actual)) return false;
    params = new Map();
  } else {
    const form = formParams(request.body);
    if (!form) return false;
    params = form;
  }
  return candidateUrls(request.url).some((url) =>
    secretsEqual(request.signature, expectedSignature(authToken, url, params, hash)),
  );
}
