/** Removes a bench run's keys: SCAN by pattern, UNLINK in pages (never KEYS, which blocks a shared Redis). */
import type Redis from "ioredis";

export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}
