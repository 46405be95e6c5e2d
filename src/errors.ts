/**
 * Herald's error catalogue: every failure a client can see has a stable `code`, and its HTTP status comes
 * from this one table (API.md lists the same codes; a test keeps the two in step).
 */
export const errorCatalogue = {
  unauthorized: { status: 401, title: "Unauthorized" },
  invalid_signature: { status: 401, title: "Invalid signature" },
  bad_request: { status: 400, title: "Bad request" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  request_timeout: { status: 408, title: "Request timeout" },
  validation_failed: { status: 400, title: "Validation failed" },
  invalid_json: { status: 400, title: "Invalid JSON" },
  payload_too_large: { status: 413, title: "Payload too large" },
  uri_too_long: { status: 414, title: "URI too long" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  conflict: { status: 409, title: "Conflict" },
  rate_limited: { status: 429, title: "Too many requests" },
  headers_too_large: { status: 431, title: "Request header fields too large" },
  unavailable: { status: 503, title: "Service unavailable" },
  internal: { status: 500, title: "Internal error" },
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export interface FieldError {
  path: string;
  message: string;
}

export class HeraldError extends Error {
  override name = "HeraldError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
  }

  get status(): number {
    return errorCatalogue[this.code].status;
  }
}

export const notFound = (what: string) => new HeraldError("not_found", `${what} not found`);
