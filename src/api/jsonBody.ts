import type { FastifyInstance } from "fastify";
import { jsonPointer, tooDeepAt } from "../domain/jsonDepth.js";
import { HeraldError } from "../errors.js";

/**
 * The JSON body parser of the API: UTF-8 only (a body declared in another charset is 415, never read as
 * UTF-8), strictly decoded (invalid bytes are 400 `invalid_json`, not silently replaced by U+FFFD), parsed
 * by Fastify's prototype-poisoning-safe parser, and nested at most `maxDepth` levels (400 naming the path).
 * An empty body is no body, whatever its content type says: a POST whose fields are all optional may be
 * sent bare; a route that needs fields answers 400 naming them.
 */
export function registerJsonBody(app: FastifyInstance, maxDepth: number) {
  const parse = app.getDefaultJsonParser("error", "error");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    const charset = charsetOf(request.headers["content-type"]);
    if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
      return done(
        new HeraldError("unsupported_media_type", `Bodies must be UTF-8; this one is declared ${charset}`),
      );
    }
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(new HeraldError("invalid_json", "The body is not valid UTF-8"));
    }
    if (text === "") return done(null, undefined);
    parse(request, text, (error, value) => {
      if (error) return done(error);
      const deep = tooDeepAt(value, maxDepth);
      if (deep) {
        const path = jsonPointer("/body", deep);
        return done(
          new HeraldError("validation_failed", `The body is nested deeper than ${maxDepth} levels`, [
            { path, message: `is nested deeper than ${maxDepth} levels` },
          ]),
        );
      }
      done(null, value);
    });
  });
}

/** The lower-cased `charset` parameter of a content type, if it has one. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? "");
  return match ? (match[1] ?? "").toLowerCase() : undefined;
}
