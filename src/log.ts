/**
 * One root pino logger per process; components take a child with their name
 * and structured context. Secrets are redacted by path, so a key that reaches
 * a log call by mistake (a config dump, a request's headers, an error carrying
 * the client's options) is censored rather than written.
 */
import pino, { type Logger } from "pino";

export type { Logger } from "pino";

/** Paths censored wherever they appear at the top level or one level down. */
export const REDACTED_PATHS = [
  "apiKey",
  "*.apiKey",
  "api_key",
  "*.api_key",
  "OPENAI_API_KEY",
  "*.OPENAI_API_KEY",
  "ANTHROPIC_API_KEY",
  "*.ANTHROPIC_API_KEY",
  "COHERE_API_KEY",
  "*.COHERE_API_KEY",
  "*.*.apiKey",
  "token",
  "*.token",
  "API_KEYS",
  "*.API_KEYS",
  "apiKeys[*].key",
  "*.apiKeys[*].key",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "headers.Authorization",
  "*.headers.Authorization",
  "password",
  "*.password",
  // Webhooks (issue 15 §4): the master secret, a tenant's derived secret, and a request's signature.
  "WEBHOOK_SECRET",
  "*.WEBHOOK_SECRET",
  "secret",
  "*.secret",
  'headers["webhook-signature"]',
  '*.headers["webhook-signature"]',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; the default is stdout through an async sonic-boom on hot paths. */
  destination?: pino.DestinationStream;
  /** Base fields on every line. */
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 });
  return pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid, ...options.base },
      redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace"]);
const noop = () => {};

/**
 * `parent.child(bindings)`, made on first use. A child's bindings go through
 * the redaction's wildcard paths when it is made (pino's asChindings): ~45 µs
 * a child, 2.7 % of a worker's CPU profile with one child per task, whose log
 * is used only when something goes wrong (issue 18 §1). A call at a level that
 * is off makes no child at all.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy({} as Logger, {
    get(_target, key) {
      if (typeof key === "string" && LEVELS.has(key) && !parent.isLevelEnabled(key)) return noop;
      child ??= parent.child(bindings);
      const value: unknown = Reflect.get(child, key, child);
      return typeof value === "function" ? value.bind(child) : value;
    },
  });
}
