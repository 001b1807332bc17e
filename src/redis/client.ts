/**
 * The Redis client of the whole project: ioredis, also handed to Bee-Queue.
 *
 * Bee-Queue 2 was written for node_redis 3 and recognises a client it is given
 * by its constructor's name ("Redis" or "RedisClient"); it also calls
 * `client.batch()`, which node_redis has and ioredis calls `pipeline()`
 * (bee-queue lib/queue.js, Queue#saveAll). This subclass supplies both, so the
 * project speaks to Redis through ioredis alone.
 */
import Redis, { type RedisOptions } from "ioredis";
import { errorMessage, UnavailableError } from "../errors";
import type { HealthProbe } from "../health-probe";
import { redactUrl } from "../util/redact-url";
// Before any command: ioredis asks each time whether anyone traces it (tracing-channel.ts).
import "./tracing-channel";

export class RedisClient extends Redis {
  /** node_redis's name for an un-transacted pipeline, which Bee-Queue's saveAll uses. */
  batch(): ReturnType<Redis["pipeline"]> {
    return this.pipeline();
  }

  /**
   * Bee-Queue duplicates the client for its blocking and subscriber
   * connections and waits for 'ready'; a copy of connectRedis's lazyConnect
   * option would never connect, so duplicates always connect at once.
   */
  override duplicate(override?: Partial<RedisOptions>): Redis {
    return super.duplicate({ ...override, lazyConnect: false });
  }
}

/**
 * Whether an error means "Redis is not answering" (down, restarting,
 * unreachable) rather than a bad command: ioredis gives up on a command after
 * maxRetriesPerRequest reconnections, or fails it at once on a closed
 * connection; a restarted Redis answers NOSCRIPT until the scripts are
 * loaded again. Callers answer those with 503, never 500.
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (
    error.name === "MaxRetriesPerRequestError" ||
    /Connection is closed|Stream isn't writeable|connect ECONNREFUSED|Reached the max retries per request limit|LOADING Redis is loading|NOSCRIPT/.test(
      error.message,
    ) ||
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "EPIPE"
  );
}

/**
 * Logs the connection errors of a Redis client or a Bee-Queue queue (which
 * re-emits its clients' errors), at most one line per 10 s per source. An
 * 'error' event without a listener would crash the process when Redis
 * restarts; with one, ioredis reconnects and commands resume.
 */
export function logConnectionErrors(
  source: { on(event: "error", listener: (error: Error) => void): unknown },
  log: (fields: Record<string, unknown>, message: string) => void,
  name: string,
): void {
  let last = 0;
  source.on("error", (error) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log({ connection: name, error: errorMessage(error) }, "Redis connection error; reconnecting");
  });
}

export interface RedisConnectOptions extends Omit<RedisOptions, "replyMapping"> {
  /** How long the first connection may take before connectRedis gives up. */
  connectTimeoutMs?: number;
}

/**
 * Connects and waits until the server answers. Rejects with an
 * UnavailableError naming REDIS_URL (password hidden) when it does not, and
 * leaves no client retrying in the background.
 */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<RedisClient> {
  const { connectTimeoutMs = 5000, ...redisOptions } = options;
  let lastError: unknown;
  const client = new RedisClient(url, {
    // ioredis 6 speaks RESP3 by default, and the Query Engine then answers
    // FT.SEARCH in another shape; RESP2 is what Bee-Queue and our parsers expect.
    protocol: 2,
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    maxRetriesPerRequest: 3,
    ...redisOptions,
  });
  const remember = (error: unknown) => {
    lastError = error;
  };
  client.on("error", remember);
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    client.disconnect();
    throw new UnavailableError(
      "Redis",
      `cannot reach ${redactUrl(url)} (REDIS_URL): ${errorMessage(lastError ?? error)}`,
      error,
    );
  } finally {
    client.off("error", remember);
  }
}

export interface RedisServerInfo {
  version: string;
  /** The search module's version (Query Engine), or undefined when it is not loaded. */
  searchVersion: string | undefined;
}

/** Server version and whether the Query Engine (search module) is loaded. */
export async function redisServerInfo(client: Redis): Promise<RedisServerInfo> {
  const info = await client.info("server");
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  const modules = (await client.call("MODULE", "LIST")) as unknown[][];
  const search = modules.find((m) => m[1] === "search" || m[1] === "ft");
  const raw = search ? Number(search[3]) : undefined;
  const searchVersion = raw ? `${Math.floor(raw / 10000)}.${Math.floor(raw / 100) % 100}.${raw % 100}` : undefined;
  return { version, searchVersion };
}

export function redisProbe(client: Redis): HealthProbe {
  return {
    name: "redis",
    required: true,
    async check() {
      await client.ping();
      return undefined;
    },
  };
}
