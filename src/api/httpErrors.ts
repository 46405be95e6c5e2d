import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay, { type HTTPMethod } from "find-my-way";
import { type Problem, problem } from "./problem.js";

/**
 * Errors raised below the routes — by Node's HTTP parser, by Fastify's router, by the body limit — answered
 * as problem+json with a catalogue code like every other error, never as Fastify's or Node's own bodies.
 */

/** URLs longer than this are 414; Node's parser refuses a request line past its 16 KiB header limit anyway. */
export const maxUrlLength = 8192;

const rawResponse = (body: Problem) => {
  const json = JSON.stringify(body);
  return [
    `HTTP/1.1 ${body.status} ${STATUS_CODES[body.status]}`,
    "Content-Type: application/problem+json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(json)}`,
    "Connection: close",
    "",
    json,
  ].join("\r\n");
};

/**
 * What Node's parser refused. A header overflow whose request line has not ended yet is a URL too long;
 * otherwise the headers are too large.
 */
export function clientProblem(error: Error & { code?: string; rawPacket?: Buffer }): Problem {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW": {
      const start = error.rawPacket?.subarray(0, maxUrlLength + 64).toString("latin1") ?? "";
      return /^[A-Z]+ /.test(start) && !start.includes("\r\n")
        ? problem("uri_too_long", `The URL is longer than ${maxUrlLength} bytes`)
        : problem("headers_too_large", "The request headers are larger than 16 KiB");
    }
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return problem("request_timeout", "The request did not arrive whole in time");
    default:
      return problem("bad_request", "The request line or a header is malformed");
  }
}

/** Fastify's `clientErrorHandler`: answer on the raw socket when it can still take an answer. */
export function onClientError(error: Error & { code?: string }, socket: Duplex) {
  if (error.code === "ECONNRESET" || error.code === "EPIPE" || socket.destroyed) return;
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  socket.end(rawResponse(clientProblem(error)));
}

/** Fastify's `frameworkErrors`: a URL that cannot be decoded, or a path parameter too long to be an id. */
export function onFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const body =
    error.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? problem("not_found", `No resource at ${request.url.slice(0, 200)}`)
      : problem("bad_request", "The URL is malformed (invalid percent-encoding)");
  return reply.status(body.status).type("application/problem+json").send(body);
}

/** 414 for a URL that Node accepted but is longer than Herald takes. */
export function refuseLongUrls(app: FastifyInstance) {
  app.addHook("onRequest", async (request) => {
    if (request.url.length > maxUrlLength) {
      throw Object.assign(new Error(`The URL is longer than ${maxUrlLength} bytes`), { statusCode: 414 });
    }
  });
}

/** Unknown routes are 404 `not_found`; a known path called with a method it does not take is 405. */
export function registerNotFound(app: FastifyInstance) {
  const methodsOf = trackRouteMethods(app);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const allowed = methodsOf(request.method, path);
    if (allowed.length > 0) reply.header("allow", allowed.join(", "));
    const body =
      allowed.length > 0
        ? problem(
            "method_not_allowed",
            `${path} does not take ${request.method}; it takes ${allowed.join(", ")}`,
          )
        : problem("not_found", `No route ${request.method} ${path}`);
    return reply.status(body.status).type("application/problem+json").send(body);
  });
}

/**
 * Every route's path and methods, so a path that exists answers 405 with `Allow` for a method it does not
 * take, instead of 404. Returns the methods a path takes (empty when no route has it).
 */
function trackRouteMethods(app: FastifyInstance): (method: string, url: string) => string[] {
  const router = FindMyWay({ ignoreTrailingSlash: false, maxParamLength: 1000 });
  const methods = new Set<HTTPMethod>();
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat() as HTTPMethod[]) {
      methods.add(method);
      try {
        router.on(method, route.url, () => {});
      } catch {
        // Registered twice (Fastify adds HEAD beside GET itself): once is enough here.
      }
    }
  });
  return (method, path) => [...methods].filter((m) => m !== method && router.find(m, path) !== null).sort();
}
