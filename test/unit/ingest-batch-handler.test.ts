import { describe, expect, test } from "bun:test";
import type { Batch, KafkaMessage } from "kafkajs";
import { type BatchOutcome, type BatchPayload, createBatchHandler } from "../../src/ingest/batch-handler";
import type { DeadLetter } from "../../src/ingest/dead-letters";
import { createLogger } from "../../src/log";
import type { TaskJob } from "../../src/task/contract";

const logger = createLogger({ level: "silent" });

function message(offset: number, value: string): KafkaMessage {
  return {
    offset: String(offset),
    key: Buffer.from("u"),
    value: Buffer.from(value),
    timestamp: "0",
    attributes: 0,
    headers: {},
  };
}

/** A promise the test settles by hand: a write that stays in flight until the test says it is durable. */
function deferred() {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Polls `check` once per macrotask until it holds (or fails after `timeoutMs`). A macrotask turn runs
 * every microtask first, so when a check that waits on promises the stand-ins settle at once holds, every
 * step of the handler that does not wait on something still pending has run as well.
 */
async function until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  // One more turn: whatever the handler does next without waiting on a pending write happens now.
  await new Promise((resolve) => setImmediate(resolve));
}

function harness(
  values: string[],
  options: {
    staleAfter?: number;
    /** The error an enqueue of these jobs fails with, if any. */
    enqueueError?: (jobs: readonly TaskJob[]) => Error | undefined;
    /** The error a DLQ write of these letters fails with, if any. */
    deadLetterError?: (letters: readonly DeadLetter[]) => Error | undefined;
    rebalancing?: boolean;
    highWatermark?: number;
    /** The DLQ write stays in flight until this settles. */
    deadLettersDurable?: Promise<void>;
    /** The enqueue stays in flight until this settles. */
    jobsDurable?: Promise<void>;
  } = {},
) {
  const calls: string[] = [];
  const enqueued: TaskJob[][] = [];
  const letters: DeadLetter[] = [];
  const outcomes: BatchOutcome[] = [];
  let chunks = 0;
  let waiting = 0;
  const handler = createBatchHandler({
    enqueuer: {
      async enqueueBatch(jobs) {
        calls.push(`enqueue:${jobs.length}`);
        const error = options.enqueueError?.(jobs);
        if (error) throw error;
        if (options.jobsDurable) {
          await options.jobsDurable;
          calls.push(`enqueue-durable:${jobs.length}`);
        }
        enqueued.push([...jobs]);
        waiting += jobs.length;
        return { added: jobs.length, duplicates: 0, duplicateIds: [], waiting };
      },
    },
    deadLetters: {
      async send(batch) {
        if (batch.length > 0) calls.push(`dlq:${batch.length}`);
        const error = options.deadLetterError?.(batch);
        if (error) throw error;
        if (options.deadLettersDurable && batch.length > 0) {
          await options.deadLettersDurable;
          calls.push(`dlq-durable:${batch.length}`);
        }
        letters.push(...batch);
      },
    },
    logger,
    chunkSize: 2,
    attempts: 3,
    backoffMs: 1,
    ...(options.highWatermark ? { highWatermark: options.highWatermark } : {}),
    onHighWatermark: (n) => calls.push(`high-watermark:${n}`),
    onOutcome: (_topic, _partition, outcome) => outcomes.push(outcome),
  });
  const messages = values.map((v, i) => message(100 + i, v));
  const payload: BatchPayload = {
    batch: { topic: "t", partition: 0, highWatermark: String(100 + values.length), messages } as unknown as Batch,
    resolveOffset: (offset) => calls.push(`resolve:${offset}`),
    heartbeat: async () => {
      calls.push("heartbeat");
      if (options.rebalancing) throw new Error("The group is rebalancing, so a rejoin is needed");
    },
    commitOffsetsIfNecessary: async (offsets) => {
      calls.push(`commit:${offsets?.topics[0]?.partitions[0]?.offset}`);
      chunks++;
    },
    isRunning: () => true,
    isStale: () => options.staleAfter !== undefined && chunks >= options.staleAfter,
  };
  return { run: () => handler(payload), calls, enqueued, letters, outcomes };
}

const valid = (id: string) => JSON.stringify({ event_id: id, text: `text ${id}` });

describe("the batch handler", () => {
  test("works a batch chunk by chunk: enqueue and dead letters, then resolve, commit and heartbeat", async () => {
    const h = harness([valid("a"), "not json", valid("b")]);
    await h.run();
    expect(h.calls).toEqual([
      "enqueue:1",
      "dlq:1",
      "resolve:101",
      "commit:102",
      "heartbeat",
      "enqueue:1",
      "resolve:102",
      "commit:103",
      "heartbeat",
    ]);
    expect(h.letters[0]).toMatchObject({ reason: "not_json", origin: { partition: 0, offset: "101" } });
    expect(h.outcomes).toEqual([
      expect.objectContaining({ consumed: 3, enqueued: 2, dead_lettered: 1, committed: "103", lag: 0 }),
    ]);
  });

  test("the commit waits for the dead-letter write: nothing is resolved or committed while it is in flight", async () => {
    const dlq = deferred();
    const h = harness([valid("a"), "not json"], { deadLettersDurable: dlq.promise });
    const run = h.run();
    // The chunk's jobs are in Redis and its dead letter is on its way: only the DLQ write is pending.
    await until(() => h.calls.includes("dlq:1") && h.enqueued.length === 1, "the chunk's enqueue and DLQ write");
    expect(h.calls.filter((c) => c.startsWith("resolve") || c.startsWith("commit"))).toEqual([]);
    dlq.resolve();
    await run;
    expect(h.calls).toEqual(["enqueue:1", "dlq:1", "dlq-durable:1", "resolve:101", "commit:102", "heartbeat"]);
  });

  test("the commit waits for the enqueue: nothing is resolved or committed while the jobs are in flight", async () => {
    const jobs = deferred();
    const h = harness([valid("a"), "not json"], { jobsDurable: jobs.promise });
    const run = h.run();
    await until(() => h.calls.includes("enqueue:1") && h.letters.length === 1, "the chunk's enqueue and DLQ write");
    expect(h.calls.filter((c) => c.startsWith("resolve") || c.startsWith("commit"))).toEqual([]);
    jobs.resolve();
    await run;
    expect(h.calls).toEqual(["enqueue:1", "dlq:1", "enqueue-durable:1", "resolve:101", "commit:102", "heartbeat"]);
  });

  test("an enqueue that fails because Redis is away commits nothing, so the events are redelivered", async () => {
    const h = harness([valid("a"), valid("b")], { enqueueError: () => new Error("Connection is closed.") });
    await expect(h.run()).rejects.toThrow("Connection is closed.");
    // An outage is not the events' fault: no retry of its own, no dead letter, no commit.
    expect(h.calls).toEqual(["enqueue:2"]);
  });

  test("a chunk the DLQ keeps refusing is retried, then its letter skipped and counted, and the partition moves on", async () => {
    const refused = Object.assign(new Error("The request included a message larger than the max message size"), {
      name: "KafkaJSNonRetriableError",
      retriable: false,
    });
    const h = harness([valid("a"), "not json", valid("b")], { deadLetterError: () => refused });
    await h.run();
    // 3 tries of the chunk, a heartbeat in each pause (the enqueue done once, not again), the letter alone,
    // then the next chunk.
    expect(h.calls).toEqual([
      "enqueue:1",
      "dlq:1",
      "heartbeat",
      "dlq:1",
      "heartbeat",
      "dlq:1",
      "dlq:1",
      "resolve:101",
      "commit:102",
      "heartbeat",
      "enqueue:1",
      "resolve:102",
      "commit:103",
      "heartbeat",
    ]);
    expect(h.outcomes).toEqual([
      expect.objectContaining({ consumed: 3, enqueued: 2, dead_lettered: 0, skipped: 1, committed: "103" }),
    ]);
  });

  test("a job Redis keeps refusing goes to the DLQ as unprocessable; the other jobs of its chunk are enqueued", async () => {
    const h = harness([valid("a"), valid("poison")], {
      enqueueError: (jobs) =>
        jobs.some((job) => job.task_id === "poison") ? new Error("ERR Error running script: bad job") : undefined,
    });
    await h.run();
    expect(h.calls.filter((c) => c.startsWith("enqueue") || c.startsWith("dlq") || c.startsWith("commit"))).toEqual([
      "enqueue:2",
      "enqueue:2",
      "enqueue:2",
      "enqueue:1",
      "enqueue:1",
      "dlq:1",
      "commit:102",
    ]);
    expect(h.enqueued.flat().map((job) => job.task_id)).toEqual(["a"]);
    expect(h.letters).toEqual([
      expect.objectContaining({ reason: "unprocessable", origin: expect.objectContaining({ offset: "101" }) }),
    ]);
    expect(h.letters[0]?.detail).toContain("bad job");
    expect(h.outcomes).toEqual([
      expect.objectContaining({ consumed: 2, enqueued: 1, dead_lettered: 1, skipped: 0, committed: "102" }),
    ]);
  });

  test("stops between chunks when a rebalance took the partition away, keeping what it committed", async () => {
    const h = harness([valid("a"), valid("b"), valid("c"), valid("d")], { staleAfter: 1 });
    await h.run();
    expect(h.calls.filter((c) => c.startsWith("commit"))).toEqual(["commit:102"]);
    expect(h.outcomes[0]).toMatchObject({ consumed: 2, committed: "102", lag: 2 });
  });

  test("stops after the chunk that filled the queue to the high watermark, leaving the rest unresolved", async () => {
    const h = harness([valid("a"), valid("b"), valid("c"), valid("d"), valid("e")], { highWatermark: 3 });
    await h.run();
    // 2 waiting after the first chunk, 4 after the second: the third is never enqueued, resolved or committed.
    expect(h.calls).toEqual([
      "enqueue:2",
      "resolve:101",
      "commit:102",
      "heartbeat",
      "enqueue:2",
      "resolve:103",
      "commit:104",
      "high-watermark:4",
    ]);
    expect(h.outcomes[0]).toMatchObject({ consumed: 4, committed: "104", lag: 1 });
  });

  test("what it committed stays counted when the heartbeat says the group is rebalancing", async () => {
    const h = harness([valid("a"), valid("b"), valid("c")], { rebalancing: true });
    await expect(h.run()).rejects.toThrow("rebalancing");
    expect(h.outcomes).toEqual([expect.objectContaining({ consumed: 2, enqueued: 2, committed: "102" })]);
  });
});
