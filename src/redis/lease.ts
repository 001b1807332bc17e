/**
 * A lease in Redis: a key holding its owner's token, with an expiry that the
 * owner renews while it works, so that an owner killed with -9 holds the
 * others up at most one lease. Renew and release act only while the key
 * still holds the caller's token: an owner that outlived its lease must not
 * renew or release the next owner's. The single-flight lock of the semantic
 * cache and the fine-tune follower's lease are both this.
 */
import type Redis from "ioredis";
import { defineScript } from "./script";

/** KEYS[1] the lease   ARGV[1] token.   1 when it was ours and is gone, else 0. */
export const RELEASE_LEASE = defineScript<number>(
  "leaseRelease",
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

/** KEYS[1] the lease   ARGV[1] token   ARGV[2] lease ms.   1 when it is still ours (and extended), else 0. */
export const RENEW_LEASE = defineScript<number>(
  "leaseRenew",
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
);

/** Takes the lease when nobody holds it; true when it is now the caller's. */
export async function acquireLease(redis: Redis, key: string, token: string, leaseMs: number): Promise<boolean> {
  return (await redis.set(key, token, "PX", leaseMs, "NX")) === "OK";
}

export async function renewLease(redis: Redis, key: string, token: string, leaseMs: number): Promise<boolean> {
  return (await RENEW_LEASE.run(redis, [key], [token, leaseMs])) === 1;
}

export async function releaseLease(redis: Redis, key: string, token: string): Promise<boolean> {
  return (await RELEASE_LEASE.run(redis, [key], [token])) === 1;
}
