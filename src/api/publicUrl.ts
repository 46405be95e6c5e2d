import type { FastifyRequest } from "fastify";

export interface PublicUrlOptions {
  /** HERALD_PUBLIC_URL: Herald's URL as providers call it (scheme, host, any path prefix), no trailing "/". */
  publicUrl?: string | undefined;
  /** HERALD_TRUST_PROXY: believe `X-Forwarded-Proto` and `X-Forwarded-Host` (set by the operator's proxy). */
  trustProxy?: boolean | undefined;
}

/** The value the nearest proxy added: the last of a header's comma-separated values. */
function lastValue(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(",") : value;
  const last = joined?.split(",").at(-1)?.trim();
  return last === undefined || last === "" ? undefined : last;
}

/**
 * The URL a provider called, as it knows it (Twilio signs it): `HERALD_PUBLIC_URL` followed by the request's
 * path and query when set; else the request's own scheme and `Host`, or — only when the operator trusts its
 * proxies — the last `X-Forwarded-Proto` and `X-Forwarded-Host` (a client can send those headers too: without
 * a proxy that sets them, they are ignored).
 */
export function publicUrlOf(
  request: Pick<FastifyRequest, "protocol" | "host" | "url" | "headers">,
  { publicUrl, trustProxy = false }: PublicUrlOptions = {},
): string {
  if (publicUrl !== undefined) return `${publicUrl}${request.url}`;
  const forwardedProto = trustProxy
    ? lastValue(request.headers["x-forwarded-proto"])?.toLowerCase()
    : undefined;
  const protocol =
    forwardedProto === "http" || forwardedProto === "https" ? forwardedProto : request.protocol;
  const host = (trustProxy ? lastValue(request.headers["x-forwarded-host"]) : undefined) ?? request.host;
  return `${protocol}://${host}${request.url}`;
}
