/** The one batcher behind embeddings, KNN queries, Bee-Queue saves and Kafka results: what leaves when, and whose failure reaches whom. */
import { describe, expect, test } from "bun:test";
import { createBatcher, ItemFailure } from "../../src/util/batcher";

/** A run whose batches are answered by the test: each call waits until the test settles it. */
function heldRun<I, O>() {
  const calls: { items: I[]; answer: PromiseWithResolvers<readonly (O | ItemFailure)[]> }[] = [];
  const run = (items: I[]) => {
    const answer = Promise.withResolvers<readonly (O | ItemFailure)[]>();
    calls.push({ items, answer });
    return answer.promise;
  };
  return { calls, run };
}

/** Each promise's value, or its error's message; handlers attached at once, so no rejection goes unhandled meanwhile. */
const outcomes = (promises: Promise<unknown>[]) =>
  Promise.allSettled(promises).then((results) =>
    results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)),
  );

const echo = async (items: number[]) => items.map((n) => n * 10);
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("batcher", () => {
  test("a full batch leaves at once, without waiting for the window", async () => {
    const sizes: number[] = [];
    const batcher = createBatcher<number, number>({
      lingerMs: 60_000,
      maxSize: 3,
      run: async (items) => {
        sizes.push(items.length);
        return items.map((n) => n * 10);
      },
    });
    const started = performance.now();
    expect(await Promise.all([1, 2, 3].map((n) => batcher.add(n)))).toEqual([10, 20, 30]);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(sizes).toEqual([3]);
  });

  test("items handed over within the window leave together when it ends, not before", async () => {
    const batches: { items: number[]; at: number }[] = [];
    const started = performance.now();
    const batcher = createBatcher<number, number>({
      lingerMs: 50,
      maxSize: 100,
      run: async (items) => {
        batches.push({ items, at: performance.now() - started });
        return items.map((n) => n * 10);
      },
    });
    const first = batcher.add(1);
    await Bun.sleep(10);
    const second = batcher.add(2);
    expect(await Promise.all([first, second])).toEqual([10, 20]);
    expect(batches.map((b) => b.items)).toEqual([[1, 2]]);
    // The window counts from the first item, not the last.
    expect(batches[0]?.at).toBeGreaterThanOrEqual(45);
  });

  test("with linger 0, what is handed over in one turn of the event loop leaves in one batch, later items in the next", async () => {
    const batches: number[][] = [];
    const batcher = createBatcher<number, number>({
      lingerMs: 0,
      maxSize: 100,
      run: async (items) => {
        batches.push(items);
        return items;
      },
    });
    const sameTurn = [batcher.add(1), batcher.add(2), batcher.add(3)];
    await nextTurn();
    const later = batcher.add(4);
    await Promise.all([...sameTurn, later]);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  test("at most maxInFlight batches are on the wire; items waiting meanwhile leave together when a slot frees", async () => {
    const { calls, run } = heldRun<number, number>();
    const batcher = createBatcher<number, number>({ lingerMs: 0, maxSize: 2, maxInFlight: 1, run });
    const first = batcher.add(1);
    await nextTurn();
    expect(calls.map((c) => c.items)).toEqual([[1]]);

    const waiting = [2, 3, 4].map((n) => batcher.add(n));
    await nextTurn();
    expect(calls).toHaveLength(1);

    calls[0]?.answer.resolve([10]);
    expect(await first).toBe(10);
    // The slot went to the waiting items at once, cut at maxSize; the rest waits for the next slot.
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3]]);
    calls[1]?.answer.resolve([20, 30]);
    await nextTurn();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3], [4]]);
    calls[2]?.answer.resolve([40]);
    expect(await Promise.all(waiting)).toEqual([20, 30, 40]);
  });

  test("a batch coming back does not cut short the window of the items waiting for company", async () => {
    const { calls, run } = heldRun<number, number>();
    const batcher = createBatcher<number, number>({ lingerMs: 40, maxSize: 100, run });
    const first = batcher.add(1);
    void batcher.flush();
    const later = [batcher.add(2), batcher.add(3)];
    calls[0]?.answer.resolve([10]);
    await first;
    await nextTurn();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    while (calls.length < 2) await Bun.sleep(5);
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3]]);
    calls[1]?.answer.resolve([20, 30]);
    expect(await Promise.all(later)).toEqual([20, 30]);
  });

  test("a failed batch rejects exactly its own items; the batch beside it still resolves", async () => {
    const { calls, run } = heldRun<number, number>();
    const batcher = createBatcher<number, number>({ lingerMs: 0, maxSize: 2, run });
    const settled = outcomes([1, 2, 3, 4].map((n) => batcher.add(n)));
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    calls[0]?.answer.reject(new Error("broker down"));
    calls[1]?.answer.resolve([30, 40]);
    expect(await settled).toEqual(["broker down", "broker down", 30, 40]);
  });

  test("an ItemFailure rejects that one item; the others of its batch resolve", async () => {
    const batcher = createBatcher<number, number>({
      lingerMs: 0,
      maxSize: 10,
      run: async (items) => items.map((n) => (n === 2 ? new ItemFailure(new Error("item 2 refused")) : n * 10)),
    });
    expect(await outcomes([1, 2, 3].map((n) => batcher.add(n)))).toEqual([10, "item 2 refused", 30]);
  });

  test("a run that throws synchronously, or answers the wrong number of results, fails its items instead of hanging them", async () => {
    const throwing = createBatcher<number, number>({
      lingerMs: 0,
      maxSize: 10,
      run: () => {
        throw new TypeError("bug in run");
      },
    });
    expect(await outcomes([throwing.add(1)])).toEqual(["bug in run"]);
    const short = createBatcher<number, number>({ lingerMs: 0, maxSize: 10, run: async () => [1] });
    const mismatch = "batch returned 1 results for 2 items";
    expect(await outcomes([short.add(1), short.add(2)])).toEqual([mismatch, mismatch]);
  });

  test("flush sends what waits without waiting for the window, and resolves only once every batch has settled", async () => {
    const { calls, run } = heldRun<number, number>();
    const batcher = createBatcher<number, number>({ lingerMs: 60_000, maxSize: 2, run });
    const items = outcomes([1, 2, 3].map((n) => batcher.add(n)));
    let flushed = false;
    const flushing = batcher.flush().then(() => {
      flushed = true;
    });
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3]]);

    calls[0]?.answer.resolve([10, 20]);
    await nextTurn();
    expect(flushed).toBe(false);
    // A failure goes to its batch's items; flush still resolves (shutdown must not throw over it).
    calls[1]?.answer.reject(new Error("gone"));
    await flushing;
    expect(await items).toEqual([10, 20, "gone"]);
  });

  test("flush with nothing waiting or in flight resolves at once", async () => {
    const batcher = createBatcher<number, number>({ lingerMs: 60_000, maxSize: 10, run: echo });
    await batcher.flush();
    expect(await Promise.all([batcher.add(1), batcher.flush().then(() => "flushed")])).toEqual([10, "flushed"]);
  });
});
