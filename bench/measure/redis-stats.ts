/**
 * `--redis-stats`: what the measured part cost Redis, per task. One `INFO
 * stats cpu commandstats` before the measured phase and one after it; the
 * differences are divided by the tasks that completed in between.
 *
 * - commands: `total_commands_processed`, which on Redis 7 counts every
 *   command run, those inside a Lua script or a MULTI too (a script of 3
 *   HSETs is 4 commands), and per command name from `commandstats`;
 * - round trips: `total_reads_processed`, the read events on client sockets.
 *   A pipeline or a MULTI written in one go is one read, so this counts the
 *   requests clients sent, not the commands in them (a very large pipeline
 *   read in several pieces counts more than once; requests of two clients are
 *   never merged). Pub/sub deliveries are writes, not reads;
 * - CPU: `used_cpu_user + used_cpu_sys` of the Redis process (command
 *   execution and the network I/O of each round trip), and the `usec` of
 *   `commandstats`, command execution alone. A script's or an EXEC's usec
 *   includes the commands run inside it, which are counted again under their
 *   own names, so the sum of usec is an upper bound.
 *
 * - AOF: the bytes appended to the append-only file per task (`aof_current_size`;
 *   left out when a rewrite ran in the window, as a rewrite starts the count again), and the rewrites that ran:
 *   each forks Redis and writes the whole dataset, the tail spikes of long runs.
 *
 * All of it is server-wide: any other client of the same Redis server (other
 * databases included) inflates the figures. The local services run nothing
 * else during a bench. Background work of the app (metrics flushes, stall
 * checks, heartbeats) is counted too, spread over the tasks of the window.
 */
import Redis from "ioredis";

export interface RedisStatsSnapshot {
  totalCommands: number;
  readsProcessed: number;
  cpuSeconds: number;
  /** NaN when the AOF is off. */
  aofSize: number;
  aofRewrites: number;
  commands: Map<string, { calls: number; usec: number }>;
}

/** Commands named per task, the most frequent first: the 18 of a task from accept to result fit. */
const TOP = 20;

export const REDIS_STATS_NOTE =
  "server-wide INFO: other clients of this Redis server inflate it; commands include those run inside scripts and MULTI; reads ≈ round trips";

export function parseInfo(text: string): RedisStatsSnapshot {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) fields.set(line.slice(0, i), line.slice(i + 1));
  }
  const commands = new Map<string, { calls: number; usec: number }>();
  for (const [key, value] of fields) {
    if (!key.startsWith("cmdstat_")) continue;
    const calls = /(?:^|,)calls=(\d+)/.exec(value);
    const usec = /(?:^|,)usec=(\d+)/.exec(value);
    commands.set(key.slice("cmdstat_".length), { calls: Number(calls?.[1] ?? 0), usec: Number(usec?.[1] ?? 0) });
  }
  const number = (name: string) => Number(fields.get(name) ?? Number.NaN);
  return {
    totalCommands: number("total_commands_processed"),
    readsProcessed: number("total_reads_processed"),
    cpuSeconds: number("used_cpu_user") + number("used_cpu_sys"),
    aofSize: number("aof_enabled") === 1 ? number("aof_current_size") : Number.NaN,
    aofRewrites: number("aof_rewrites"),
    commands,
  };
}

export interface RedisStats {
  snapshot(): Promise<RedisStatsSnapshot>;
  close(): void;
}

export function createRedisStats(redisUrl: string): RedisStats {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  client.on("error", () => {});
  return {
    async snapshot() {
      if (client.status === "wait") await client.connect();
      return parseInfo(String(await client.call("INFO", "stats", "cpu", "persistence", "commandstats")));
    },
    close: () => client.disconnect(),
  };
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
/** cmdstat names such as `client|setname` as a figure name. */
const figureName = (command: string) => command.toLowerCase().replace(/[^a-z0-9]+/g, "_");

/**
 * Per-task figures for a part's `extra`. The after-snapshot's own INFO is
 * not in its counters yet; the before-snapshot's INFO is: one command and
 * one read are taken off, and `info` is left out of the per-command figures.
 */
export function redisStatsFigures(
  before: RedisStatsSnapshot,
  after: RedisStatsSnapshot,
  tasks: number,
): Record<string, number | string> {
  if (tasks <= 0) return { redis_tasks: 0, redis_note: REDIS_STATS_NOTE };
  const deltas = [...after.commands]
    .filter(([name]) => name !== "info")
    .map(([name, { calls, usec }]) => {
      const was = before.commands.get(name) ?? { calls: 0, usec: 0 };
      return { name, calls: calls - was.calls, usec: usec - was.usec };
    })
    .filter((d) => d.calls > 0)
    .sort((a, b) => b.calls - a.calls);
  const usec = deltas.reduce((sum, d) => sum + d.usec, 0);
  const figures: Record<string, number | string> = {
    redis_tasks: tasks,
    redis_commands_per_task: round((after.totalCommands - before.totalCommands - 1) / tasks),
    redis_reads_per_task: round((after.readsProcessed - before.readsProcessed - 1) / tasks),
    redis_cpu_us_per_task: round(((after.cpuSeconds - before.cpuSeconds) * 1e6) / tasks, 1),
    redis_cmd_usec_per_task: round(usec / tasks, 1),
  };
  const rewrites = after.aofRewrites - before.aofRewrites;
  if (Number.isFinite(after.aofSize) && Number.isFinite(before.aofSize)) {
    figures.redis_aof_rewrites = rewrites;
    if (rewrites === 0) figures.redis_aof_bytes_per_task = Math.round((after.aofSize - before.aofSize) / tasks);
  }
  for (const d of deltas.slice(0, TOP)) {
    figures[`redis_${figureName(d.name)}_per_task`] = round(d.calls / tasks, 3);
    figures[`redis_${figureName(d.name)}_usec_per_task`] = round(d.usec / tasks, 1);
  }
  figures.redis_note = REDIS_STATS_NOTE;
  return figures;
}

/**
 * Wraps a scenario's operation: counts its successes between `start` and
 * `stop`, and snapshots Redis at both ends. `settleMs` after the last task
 * lets the work that follows a result (Bee-Queue's finish, the next
 * metrics flush) land in the window.
 */
export function createRedisWindow(redisUrl: string, settleMs = 1200) {
  const stats = createRedisStats(redisUrl);
  let counting = false;
  let tasks = 0;
  let before: RedisStatsSnapshot | undefined;
  return {
    count(ok: boolean) {
      if (counting && ok) tasks++;
    },
    async start() {
      tasks = 0;
      before = await stats.snapshot();
      counting = true;
    },
    async stop(): Promise<Record<string, number | string>> {
      counting = false;
      await Bun.sleep(settleMs);
      if (!before) return {};
      return redisStatsFigures(before, await stats.snapshot(), tasks);
    },
    close: () => stats.close(),
  };
}

/**
 * The `--redis-stats` window of a scenario, or undefined without the flag:
 * the app's Redis when the harness started it, else --redis-url's server.
 */
export function redisWindowFor(
  options: { redisStats: boolean; redisUrl: string },
  target: { redisUrl: string | undefined },
): ReturnType<typeof createRedisWindow> | undefined {
  return options.redisStats ? createRedisWindow(target.redisUrl ?? options.redisUrl) : undefined;
}

/** The operation, counting its successes into the window. */
export function countedOperation<T extends (index: number) => Promise<{ ok: boolean }>>(
  operation: T,
  window: ReturnType<typeof createRedisWindow> | undefined,
): T {
  if (!window) return operation;
  return (async (index: number) => {
    const outcome = await operation(index);
    window.count(outcome.ok);
    return outcome;
  }) as T;
}
