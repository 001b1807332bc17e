/**
 * The two Redis chores every store repeats, written once: a Lua script loaded
 * by SHA and called with typed arguments, and a pipeline (or MULTI) whose
 * replies are checked. ioredis's defineCommand loads a script once per client
 * and calls it by EVALSHA, falling back to EVAL on NOSCRIPT (after a Redis
 * restart or SCRIPT FLUSH); it names the command on the client object, which
 * every caller used to reach with a cast and a locally re-declared client type.
 */
import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";

type Arg = string | number | Buffer;

export interface RedisScript<Reply> {
  /** Runs the script: KEYS first (as many as it declares), then ARGV. */
  run(redis: Redis, keys: readonly string[], args: readonly Arg[]): Promise<Reply>;
  /**
   * Queues the script on a pipeline or MULTI of `redis` (defined on the client
   * first, so pipelines made after this call know the command).
   */
  queue(redis: Redis, pipeline: ChainableCommander, keys: readonly string[], args: readonly Arg[]): void;
}

type Callable<Reply> = (...args: Arg[]) => Promise<Reply>;

/**
 * A Lua script under a command name unique to the project. Its KEYS count
 * comes with each call, so one definition serves a fixed or a variable number
 * of keys.
 */
export function defineScript<Reply>(name: string, lua: string): RedisScript<Reply> {
  const commandOf = (target: Redis | ChainableCommander): Callable<Reply> =>
    (target as unknown as Record<string, Callable<Reply>>)[name] as Callable<Reply>;
  const define = (redis: Redis) => {
    if (!(name in redis)) redis.defineCommand(name, { lua });
  };
  return {
    run(redis, keys, args) {
      define(redis);
      return commandOf(redis).call(redis, keys.length, ...keys, ...args);
    },
    queue(redis, pipeline, keys, args) {
      define(redis);
      const command = commandOf(pipeline);
      if (typeof command !== "function") {
        // A pipeline made before the first definition on its client lacks the command: send the script itself.
        pipeline.eval(lua, keys.length, ...keys, ...args);
        return;
      }
      void command.call(pipeline, keys.length, ...keys, ...args);
    },
  };
}

/**
 * Runs a pipeline or MULTI and returns its replies' values, or throws the
 * first error among them (an aborted MULTI, whose exec() gives null, throws too).
 */
export async function execChecked(pipeline: ChainableCommander): Promise<unknown[]> {
  const replies = await pipeline.exec();
  if (!replies) throw new Error("Redis transaction aborted");
  const failure = replies.find(([error]) => error)?.[0];
  if (failure) throw failure;
  return replies.map(([, value]) => value);
}
