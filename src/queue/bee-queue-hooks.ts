/**
 * Where the product changes what Bee-Queue 2.0.0 (pinned in package.json)
 * does inside a worker, in one place. Each hook replaces one of its internal
 * methods on one queue object, keeps what the method promises to the rest of
 * Bee-Queue, and sends fewer Redis requests (issue 18):
 *
 * - `_preventStall(jobId)` (here): Bee-Queue renews each running job's stall
 *   lock with an SREM of its own, at the job's start and then every half
 *   stall interval: with 2,400 jobs in flight, about 2,000 requests a second.
 *   The calls made in one turn of the event loop share one SREM.
 * - `_getNextJob()` (take-gate.ts, via worker-runner.ts): a take waits for a
 *   permit of the adaptive limit.
 *
 * test/integration/bee-queue.test.ts fails when these methods change shape,
 * and checks that Bee-Queue's own workers still interoperate with ours;
 * test/fault/worker-kill.test.ts that stall detection still re-runs the jobs
 * of a killed worker.
 */
import type BeeQueue from "bee-queue";
import type { RedisClient } from "../redis/client";

/** The internals of a Bee-Queue queue that the hooks use. */
interface QueueInternals {
  client: RedisClient;
  toKey(name: string): string;
  _preventStall(jobId: string): Promise<unknown>;
}

function internalsOf(queue: BeeQueue<unknown>): QueueInternals {
  const internal = queue as unknown as QueueInternals;
  if (typeof internal._preventStall !== "function" || typeof internal.toKey !== "function")
    throw new Error("bee-queue has no _preventStall/toKey: the stall-renewal hook cannot be applied");
  return internal;
}

/** Ids in one SREM at most (a command's arguments are held in Redis's memory while it runs). */
const MAX_IDS_PER_SREM = 1000;

/**
 * The stall-lock renewals of one turn of the event loop (the jobs started in
 * it, the timers that fired in it) go out as one SREM of all their ids. Each
 * caller still gets its own promise, settled by that SREM: Bee-Queue chains
 * the job's next renewal on it, so the timing of each job's renewals is
 * unchanged (the batch goes out before the next turn's timers).
 */
export function coalesceStallRenewals(queue: BeeQueue<unknown>): void {
  const internal = internalsOf(queue);
  const stalling = internal.toKey("stalling");
  let batch: { id: string; settle: (error?: unknown) => void }[] = [];

  const flush = () => {
    const renewals = batch;
    batch = [];
    for (let from = 0; from < renewals.length; from += MAX_IDS_PER_SREM) {
      const part = renewals.slice(from, from + MAX_IDS_PER_SREM);
      internal.client.srem(stalling, ...part.map((r) => r.id)).then(
        () => {
          for (const r of part) r.settle();
        },
        (error: unknown) => {
          for (const r of part) r.settle(error);
        },
      );
    }
  };

  internal._preventStall = (jobId) =>
    new Promise<void>((resolve, reject) => {
      if (batch.length === 0) setImmediate(flush);
      batch.push({ id: String(jobId), settle: (error) => (error === undefined ? resolve() : reject(error)) });
    });
}
