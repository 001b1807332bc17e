import { describe, expect, test } from "bun:test";
import { parseInfo, redisStatsFigures } from "../../bench/measure/redis-stats";

const info = (commands: number, reads: number, cpu: string, evalsha: number, hset: number) =>
  [
    "# Stats",
    `total_commands_processed:${commands}`,
    `total_reads_processed:${reads}`,
    "# CPU",
    `used_cpu_sys:${cpu}`,
    "used_cpu_user:1.000000",
    "# Commandstats",
    `cmdstat_evalsha:calls=${evalsha},usec=${evalsha * 20},usec_per_call=20.00,rejected_calls=0,failed_calls=0`,
    `cmdstat_hset:calls=${hset},usec=${hset * 2},usec_per_call=2.00,rejected_calls=0,failed_calls=0`,
    "cmdstat_info:calls=7,usec=300,usec_per_call=42.86,rejected_calls=0,failed_calls=0",
  ].join("\r\n");

describe("--redis-stats figures", () => {
  test("per task: commands, reads, CPU and the commands by name, less the before-snapshot's own INFO", () => {
    const before = parseInfo(info(1000, 100, "1.000000", 10, 30));
    const after = parseInfo(info(1000 + 1 + 100 * 4, 100 + 1 + 100 * 2, "1.002000", 110, 330));
    const figures = redisStatsFigures(before, after, 100);
    expect(figures).toMatchObject({
      redis_tasks: 100,
      redis_commands_per_task: 4,
      redis_reads_per_task: 2,
      redis_cpu_us_per_task: 20,
      redis_cmd_usec_per_task: 26,
      redis_hset_per_task: 3,
      redis_evalsha_per_task: 1,
      redis_evalsha_usec_per_task: 20,
    });
    expect(Object.keys(figures)).not.toContain("redis_info_per_task");
    // The most frequent command first.
    expect(Object.keys(figures).indexOf("redis_hset_per_task")).toBeLessThan(
      Object.keys(figures).indexOf("redis_evalsha_per_task"),
    );
  });

  test("AOF: bytes appended per task, left out when a rewrite ran in the window (a rewrite restarts the size)", () => {
    const aof = (size: number, rewrites: number) =>
      parseInfo(
        `${info(1, 1, "1", 1, 1)}\r\n# Persistence\r\naof_enabled:1\r\naof_rewrites:${rewrites}\r\naof_current_size:${size}`,
      );
    expect(redisStatsFigures(aof(1_000_000, 3), aof(1_250_000, 3), 100)).toMatchObject({
      redis_aof_rewrites: 0,
      redis_aof_bytes_per_task: 2500,
    });
    const rewritten = redisStatsFigures(aof(1_000_000, 3), aof(400_000, 4), 100);
    expect(rewritten.redis_aof_rewrites).toBe(1);
    expect(Object.keys(rewritten)).not.toContain("redis_aof_bytes_per_task");
    // AOF off: no AOF figures at all.
    expect(
      Object.keys(redisStatsFigures(parseInfo(info(1, 1, "1", 1, 1)), parseInfo(info(9, 9, "1", 1, 1)), 4)),
    ).not.toContain("redis_aof_rewrites");
  });

  test("no task in the window: no division by zero", () => {
    const snapshot = parseInfo(info(1, 1, "1", 1, 1));
    expect(redisStatsFigures(snapshot, snapshot, 0)).toMatchObject({ redis_tasks: 0 });
  });
});
