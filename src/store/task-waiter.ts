/**
 * Wakes `GET /task/:id?wait=` requests when their task ends. One subscriber
 * connection per API process listens on DONE_CHANNEL, where workers publish
 * the id of every finished task in the same pipeline as its result; waiting
 * costs no polling and no Redis command per waiting request.
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { DONE_CHANNEL } from "./task-store";

export interface TaskWaiter {
  /** Resolves true when the task's end is announced within timeoutMs, false when the time runs out. */
  wait(taskId: string, timeoutMs: number, signal?: AbortSignal): { done: Promise<boolean>; cancel(): void };
  close(): Promise<void>;
}

export async function createTaskWaiter(deps: { redis: Redis; logger: Logger }): Promise<TaskWaiter> {
  const subscriber = deps.redis.duplicate();
  const waiters = new Map<string, Set<(ended: boolean) => void>>();
  subscriber.on("error", (error) => deps.logger.warn({ error: errorMessage(error) }, "task waiter connection error"));
  subscriber.on("message", (_channel: string, taskId: string) => {
    const set = waiters.get(taskId);
    if (!set) return;
    waiters.delete(taskId);
    for (const wake of set) wake(true);
  });
  await subscriber.subscribe(DONE_CHANNEL);

  return {
    wait(taskId, timeoutMs, signal) {
      let settle: (ended: boolean) => void = () => {};
      const done = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => finish(false), timeoutMs);
        const onAbort = () => finish(false);
        const finish = (ended: boolean) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const set = waiters.get(taskId);
          set?.delete(finish);
          if (set?.size === 0) waiters.delete(taskId);
          resolve(ended);
        };
        settle = finish;
        signal?.addEventListener("abort", onAbort, { once: true });
        const set = waiters.get(taskId) ?? new Set();
        set.add(finish);
        waiters.set(taskId, set);
      });
      return { done, cancel: () => settle(false) };
    },
    async close() {
      for (const set of waiters.values()) for (const wake of set) wake(false);
      waiters.clear();
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
