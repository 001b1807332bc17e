/** The global LLM rate limit, against the real Redis, shared by several clients as several processes would. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createRateLimiter } from "../../src/llm/rate-limiter";
import type { RedisClient } from "../../src/redis/client";
import { deleteByPrefix, requireRedis, uniquePrefix } from "../helpers/services";

let clients: RedisClient[] = [];
const prefix = uniquePrefix("ratelimit");

beforeAll(async () => {
  clients = await Promise.all([requireRedis(), requireRedis(), requireRedis()]);
});
afterAll(async () => {
  await deleteByPrefix(clients[0] as RedisClient, prefix);
  await Promise.all(clients.map((c) => c.quit()));
});

describe("LLM rate limiter (GCRA in Redis)", () => {
  test("three clients share one limit: 25 calls at 10/s are spread evenly, never more than 10 in a second", async () => {
    const key = `${prefix}:shared`;
    const limiters = clients.map((redis) => createRateLimiter({ redis, limit: { calls: 10, periodMs: 1000 }, key }));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const started = performance.now();
    const admitted: number[] = [];
    await Promise.all(
      Array.from({ length: 25 }, async (_, i) => {
        await (limiters[i % 3] as (typeof limiters)[number]).waitForSlot();
        admitted.push(performance.now() - started);
      }),
    );
    clearInterval(ticker);
    const elapsed = performance.now() - started;
    expect(admitted).toHaveLength(25);
    // One call every 100 ms: the 25th goes at ~2.4 s.
    expect(elapsed).toBeGreaterThanOrEqual(2300);
    expect(elapsed).toBeLessThan(4000);
    admitted.sort((a, b) => a - b);
    for (let i = 0; i + 10 < admitted.length; i++) {
      expect((admitted[i + 10] as number) - (admitted[i] as number)).toBeGreaterThanOrEqual(990);
    }
    // Waiting is on timers: the event loop kept ticking the whole time.
    expect(ticks).toBeGreaterThan(elapsed / 10 / 2);
  });

  test("LLM_RATE_BURST: a burst of 5 goes at once above the spacing, then calls are spaced again; the first second sees at most limit + burst", async () => {
    const key = `${prefix}:burst`;
    const limiters = clients.map((redis) =>
      createRateLimiter({ redis, limit: { calls: 10, periodMs: 1000 }, key, burst: 5 }),
    );
    const started = performance.now();
    const admitted = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await (limiters[i % 3] as (typeof limiters)[number]).waitForSlot();
        return performance.now() - started;
      }),
    );
    admitted.sort((a, b) => a - b);
    // 6 at once (the first call and a burst of 5), then one every 100 ms: the 20th at ~1.4 s.
    expect(admitted[5] as number).toBeLessThan(80);
    expect(admitted[6] as number).toBeGreaterThanOrEqual(60);
    expect(admitted[19] as number).toBeGreaterThanOrEqual(1300);
    expect(admitted[19] as number).toBeLessThan(2500);
    // The first second: the burst and then the even spacing, never more than 10 + 5 (+ the call at 0).
    const inFirstSecond = admitted.filter((t) => t < 980).length;
    expect(inFirstSecond).toBeGreaterThanOrEqual(14);
    expect(inFirstSecond).toBeLessThanOrEqual(16);
  });

  test("a backlog of waiting callers costs about one round trip per call, not one per waiter per slot", async () => {
    const redis = clients[0] as RedisClient;
    const key = `${prefix}:herd`;
    const limiter = createRateLimiter({ redis, limit: { calls: 40, periodMs: 1000 }, key });
    let commands = 0;
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((...args: Parameters<typeof send>) => {
      commands++;
      return send(...args);
    }) as typeof redis.sendCommand;
    try {
      const started = performance.now();
      // 60 callers at once, 40 a second: the last one's slot is 1.5 s away, within the booking horizon.
      await Promise.all(Array.from({ length: 60 }, () => limiter.waitForSlot()));
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      // One booking each (plus the script's first load); a herd that asked again at every slot would cost
      // hundreds.
      expect(commands).toBeGreaterThanOrEqual(60);
      expect(commands).toBeLessThanOrEqual(65);
    } finally {
      redis.sendCommand = send;
    }
  });

  test("no limit configured: no wait and no Redis key", async () => {
    const limiter = createRateLimiter({ redis: clients[0] as RedisClient, limit: undefined, key: `${prefix}:none` });
    expect(await limiter.waitForSlot()).toBe(0);
    expect(await (clients[0] as RedisClient).exists(`${prefix}:none`)).toBe(0);
  });

  test("a waiting caller can be aborted", async () => {
    const key = `${prefix}:abort`;
    const limiter = createRateLimiter({ redis: clients[0] as RedisClient, limit: { calls: 1, periodMs: 60_000 }, key });
    await limiter.waitForSlot();
    await expect(limiter.waitForSlot({ signal: AbortSignal.timeout(100) })).rejects.toThrow();
  });
});
