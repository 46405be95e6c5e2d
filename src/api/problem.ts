import type { FastifyError, FastifyInstance } from "fastify";
import { classifyDbError } from "../db/errors.js";
import { type ErrorCode, errorCatalogue, type FieldError, HeraldError } from "../errors.js";
import { drainBody } from "./drainBody.js";

/** Every error leaves as application/problem+json with a stable code; no stack or SQL reaches the body. */

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: FieldError[];
}

export function problem(code: ErrorCode, detail: string, errors?: FieldError[]): Problem {
  const { status, title } = errorCatalogue[code];
  return {
    type: `https://herald.dev/problems/${code}`,
    title,
    status,
    detail,
    code,
    // API.md: a validation failure always says where; one without field errors points at the request.
    ...(errors
      ? { errors }
      : code === "validation_failed"
        ? { errors: [{ path: "/", message: detail }] }
        : {}),
  };
}

/** A validation failure of the given fields; its detail lists them unless one is given. */
export const invalidFields = (
  errors: FieldError[],
  detail = errors.map((e) => `${e.path} ${e.message}`).join("; "),
) => new HeraldError("validation_failed", detail, errors);

const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "payload_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "validation_failed",
  FST_ERR_CTP_EMPTY_JSON_BODY: "invalid_json",
  FST_ERR_CTP_INVALID_JSON_BODY: "invalid_json",
};

/** The problem an error is answered with (the same in the error handler and in metrics). */
export function problemOf(error: FastifyError | HeraldError | Error): Problem {
  if (error instanceof HeraldError) return problem(error.code, error.message, error.errors);
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const errors = fastifyError.validation.map((v) => {
      const missing =
        (v.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
      const field = missing.missingProperty ?? missing.additionalProperty;
      const path = `/${fastifyError.validationContext ?? "body"}${v.instancePath}${field ? `/${field}` : ""}`;
      const message = missing.additionalProperty ? "is not an accepted field" : (v.message ?? "is invalid");
      return { path, message };
    });
    return problem("validation_failed", errors.map((e) => `${e.path} ${e.message}`).join("; "), errors);
  }
  const mapped = fastifyError.code ? fastifyCodes[fastifyError.code] : undefined;
  if (mapped) return problem(mapped, fastifyError.message);
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return problem("invalid_json", "The body is not valid JSON");
  }
  switch (classifyDbError(error)) {
    case "unavailable":
      return problem("unavailable", "The database is unavailable; retry later");
    case "serialization_failure":
      // A deadlock or serialization conflict with a concurrent transaction: nothing was written; retrying works.
      return problem("unavailable", "A concurrent change conflicted with this request; retry it");
    case "invalid_input":
      return problem("validation_failed", "A value has the wrong format", [
        { path: "/", message: "invalid value" },
      ]);
    case "unique_violation":
      return problem("conflict", "The resource already exists");
    case "foreign_key_violation":
      return problem("validation_failed", "A referenced resource does not exist", [
        { path: "/body", message: "refers to a resource that does not exist" },
      ]);
  }
  if (fastifyError.statusCode === 413) return problem("payload_too_large", "The body is too large");
  if (fastifyError.statusCode === 414) return problem("uri_too_long", fastifyError.message);
  if (fastifyError.statusCode === 415) return problem("unsupported_media_type", fastifyError.message);
  if (
    fastifyError.statusCode !== undefined &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    return problem("validation_failed", fastifyError.message, [{ path: "/", message: fastifyError.message }]);
  }
  return problem("internal", "Something went wrong on our side; it has been logged");
}

export function registerProblemHandlers(app: FastifyInstance) {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const body = problemOf(error);
    if (body.status >= 500) request.log.error({ err: error }, "request failed");
    if (body.code === "payload_too_large") await drainBody(request);
    return reply.status(body.status).type("application/problem+json").send(body);
  });
}
