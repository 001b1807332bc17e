/**
 * The cross-process half of the cache's single flight: a leader holds a
 * `SET NX` lock with a short lease that it renews while the LLM computes (so
 * a leader killed with -9 holds the others up at most one lease); a follower
 * polls, with growing pauses, until the leader's entry appears or the lock
 * goes (then it tries to lead itself).
 */
import type { ChatResult } from "../llm/provider";
import { sleep } from "../util/backoff";
import type { CachedAnswer, CacheEntries } from "./cache-entries";

/** Waits for another process's leader: its entry, or undefined once its lock is gone or maxMs passed. */
export async function followLeader(
  entries: CacheEntries,
  key: string,
  lock: string,
  maxMs: number,
): Promise<CachedAnswer | undefined> {
  const deadline = Date.now() + maxMs;
  let delay = 5;
  while (Date.now() < deadline) {
    await sleep(delay);
    delay = Math.min(delay * 1.5, 100);
    const { entry, locked } = await entries.peek(key, lock);
    if (entry) return entry;
    if (!locked) return undefined;
  }
  return undefined;
}

/** Runs compute while renewing the lock's lease every third of it; releases the lock when compute throws. */
export async function computeUnderLease(
  entries: CacheEntries,
  lock: string,
  token: string,
  leaseMs: number,
  compute: () => Promise<ChatResult>,
): Promise<ChatResult> {
  const lease = setInterval(() => {
    entries.renew(lock, token, leaseMs).catch(() => {});
  }, leaseMs / 3);
  try {
    return await compute();
  } catch (error) {
    await entries.unlock(lock, token).catch(() => {});
    throw error;
  } finally {
    clearInterval(lease);
  }
}
