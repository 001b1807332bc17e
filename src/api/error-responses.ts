/**
 * The one JSON shape of every 4xx/5xx: `{ error: { code, message, details? } }`,
 * and the one function that maps a thrown value to it.
 */
import { Elysia, ParseError, t, ValidationError } from "elysia";
import { AppError, errorMessage } from "../errors";
import type { Logger } from "../log";
import { isRedisUnavailable } from "../redis/client";

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** The error shape in the OpenAPI document. */
export const ErrorSchema = t.Object(
  {
    error: t.Object({ code: t.String(), message: t.String(), details: t.Optional(t.Unknown()) }),
  },
  { description: "the one error shape of every 4xx/5xx" },
);

/**
 * The error statuses a route can answer, for its `response` map, so the
 * OpenAPI document lists every status a client may see. Errors are answered
 * by the error handler, so these schemas only document.
 */
export function errorResponses<S extends number>(...statuses: S[]): Record<S, typeof ErrorSchema> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorSchema])) as Record<S, typeof ErrorSchema>;
}

/** What any route may answer besides its own: no key, over the rate limit, Redis away. */
export const COMMON_ERRORS = [401, 429, 503] as const;

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** A complete error response in the one shape. */
export function errorResponse(status: number, code: string, message: string, details?: unknown): Response {
  return jsonResponse(status, errorBody(code, message, details));
}

function jsonResponse(status: number, body: ErrorBody, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * Field path ("/text" → "text"), location and reason of the first schema
 * violation. Elysia checks a query parameter on its own ("property", with an
 * empty path, and names it nowhere): its name is found as the parameter whose
 * value failed, the first one if two hold the same value (GET /task/:id has
 * one query parameter).
 */
function validationDetails(
  error: ValidationError,
  request: Request,
): { field: string; message: string; location: string } {
  const first = error.valueError ?? error.all[0];
  const path = first && "path" in first ? String(first.path) : "";
  const message = first && "message" in first ? String(first.message) : error.message;
  let field = path.replace(/^\//, "").replaceAll("/", ".");
  let location = error.type;
  if (field === "" && error.type === "property") {
    for (const [name, value] of new URL(request.url).searchParams) {
      if (value === String(error.value)) {
        field = name;
        location = "query";
        break;
      }
    }
  }
  return { field: field || `(${location})`, message, location };
}

/**
 * Maps errors to responses. Unexpected errors are logged with their stack and
 * answered with a generic 500 that leaks nothing of the internals.
 */
export function errorHandler(logger: Logger, allowedMethods: (path: string) => string[] = () => []) {
  return new Elysia({ name: "error-handler" }).onError({ as: "global" }, ({ code, error: thrown, request }) => {
    let error = thrown;
    const route = `${request.method} ${new URL(request.url).pathname}`;
    if (error instanceof ValidationError) {
      const details = validationDetails(error, request);
      logger.info({ route, ...details }, "request rejected: validation failed");
      return jsonResponse(422, errorBody("VALIDATION_FAILED", `${details.field}: ${details.message}`, details));
    }
    // Elysia wraps whatever a parse hook throws (a chunked body over the limit) in its ParseError.
    if (error instanceof ParseError && error.cause instanceof AppError) error = error.cause;
    if (error instanceof AppError) {
      const level = error.status >= 500 ? "warn" : "info";
      logger[level]({ route, code: error.code, err: error }, error.message);
      const retryAfter = error.retryAfter ?? (error.status === 503 ? 1 : undefined);
      const headers: Record<string, string> = retryAfter === undefined ? {} : { "retry-after": String(retryAfter) };
      return jsonResponse(error.status, errorBody(error.code, error.message, error.details), headers);
    }
    switch (code) {
      case "NOT_FOUND": {
        // A known path with another method is 405 with Allow, as HTTP asks; only an unknown path is 404.
        const allowed = allowedMethods(new URL(request.url).pathname);
        if (allowed.length > 0 && !allowed.includes(request.method)) {
          return jsonResponse(
            405,
            errorBody("METHOD_NOT_ALLOWED", `${request.method} is not allowed here; use ${allowed.join(", ")}`),
            { allow: allowed.join(", ") },
          );
        }
        return jsonResponse(404, errorBody("NOT_FOUND", `no route for ${route}`));
      }
      case "PARSE":
        logger.info({ route, reason: errorMessage(error) }, "request rejected: unparseable body");
        return jsonResponse(
          400,
          errorBody("INVALID_BODY", "the request body could not be parsed as its content type says"),
        );
      case "INVALID_COOKIE_SIGNATURE":
      case "INVALID_FILE_TYPE":
        return jsonResponse(400, errorBody("BAD_REQUEST", errorMessage(error)));
      default: {
        if (isRedisUnavailable(error)) {
          logger.warn({ route, error: errorMessage(error) }, "Redis unavailable; answering 503");
          return jsonResponse(
            503,
            errorBody("SERVICE_UNAVAILABLE", "Redis is unavailable; retry shortly", { service: "Redis" }),
            { "retry-after": "1" },
          );
        }
        const status =
          typeof (error as { status?: unknown }).status === "number" ? (error as { status: number }).status : 500;
        if (status < 500) return jsonResponse(status, errorBody("BAD_REQUEST", errorMessage(error)));
        logger.error({ route, err: error }, "unhandled error");
        return jsonResponse(500, errorBody("INTERNAL", "internal error; the server logged the details"));
      }
    }
  });
}
