/**
 * Typed errors: a stable `code` for clients and logs, a `retriable` flag that
 * the worker's retry decision reads, and the original `cause`. One function
 * maps them to HTTP (src/api/error-responses.ts); a plain TypeError is a bug and is
 * never retried.
 */
export interface AppErrorOptions {
  status?: number;
  retriable?: boolean;
  details?: unknown;
  cause?: unknown;
  /** Seconds a client should wait before retrying (HTTP Retry-After); 503 answers say 1 without it. */
  retryAfter?: number;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retriable: boolean;
  readonly details: unknown;
  readonly retryAfter: number | undefined;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = options.status ?? 500;
    this.retriable = options.retriable ?? false;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
  }
}

/** A dependency (Redis, Kafka, the LLM provider) did not answer. Retriable; HTTP 503. */
export class UnavailableError extends AppError {
  constructor(service: string, message: string, cause?: unknown) {
    super("SERVICE_UNAVAILABLE", `${service} is unavailable: ${message}`, {
      status: 503,
      retriable: true,
      cause,
      details: { service },
    });
    this.name = "UnavailableError";
  }
}

/** The message of any thrown value, for logs and error bodies. */
export function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorMessage(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
