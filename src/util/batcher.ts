/**
 * The one batcher (issue 12 §4): items handed over within `lingerMs` of the
 * first one (or until `maxSize` are waiting) go to `run` together, and each
 * caller gets its own result back. Embeddings (one provider call instead of
 * N), KNN queries and Bee-Queue saves (one Redis pipeline instead of N round
 * trips) and Kafka results (one produce request) all go through it.
 *
 * - lingerMs 0: the batch is what arrives before the next turn of the event
 *   loop (setImmediate, no timer): no added latency at low load, and callers
 *   woken together by one earlier batch share the next one.
 * - A full batch leaves at once, without waiting for the window.
 * - maxInFlight bounds the batches on the wire; while all slots are taken,
 *   items wait and leave together, up to maxSize per batch, as soon as a
 *   slot frees (group commit: under load batches grow by themselves).
 * - A failure reaches exactly the items of its batch: a rejected `run` fails
 *   all of them, an `ItemFailure` in its results fails that one item.
 * - flush() sends what waits and resolves once nothing waits or is in flight
 *   (shutdown); it never rejects, batch failures go to their items.
 */

/** In a result of `run`: this item failed with `error`, the others of its batch stand. */
export class ItemFailure {
  constructor(readonly error: unknown) {}
}

export interface Batcher<I, O> {
  add(item: I): Promise<O>;
  /** Sends whatever waits now; resolves when no item waits and no batch is in flight. */
  flush(): Promise<void>;
}

export interface BatcherOptions<I, O> {
  /** How long the first item of a batch waits for company, ms; 0: until the next turn of the event loop. */
  lingerMs: number;
  /** Items per batch at most. */
  maxSize: number;
  /** Batches on the wire at once; more items wait for a slot. Unbounded by default. */
  maxInFlight?: number;
  /** One result (or ItemFailure) per item, in order; a rejection fails every item of the batch. */
  run: (items: I[]) => Promise<readonly (O | ItemFailure)[]>;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export function createBatcher<I, O>(options: BatcherOptions<I, O>): Batcher<I, O> {
  const { lingerMs, maxSize, maxInFlight = Number.POSITIVE_INFINITY, run } = options;
  let waiting: Pending<I, O>[] = [];
  let inFlight = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let immediate: ReturnType<typeof setImmediate> | undefined;
  /** The window of the waiting items has ended (or flush() asked): they leave as soon as a slot is free. */
  let due = false;
  let idle: PromiseWithResolvers<void> | undefined;

  const cancelWindow = () => {
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
  };

  const settle = (batch: Pending<I, O>[], results: readonly (O | ItemFailure)[]) => {
    if (results.length !== batch.length) {
      const error = new Error(`batch returned ${results.length} results for ${batch.length} items`);
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const [i, pending] of batch.entries()) {
      const result = results[i];
      if (result instanceof ItemFailure) pending.reject(result.error);
      else pending.resolve(result as O);
    }
  };

  const dispatch = async (batch: Pending<I, O>[]): Promise<void> => {
    inFlight++;
    try {
      const items = batch.map((pending) => pending.item);
      // Called inside a promise so that a synchronous throw fails the batch like a rejection.
      const results = await new Promise<readonly (O | ItemFailure)[]>((resolve) => resolve(run(items)));
      settle(batch, results);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      inFlight--;
      pump();
    }
  };

  const pump = (): void => {
    while (inFlight < maxInFlight && (waiting.length >= maxSize || (due && waiting.length > 0))) {
      const batch = waiting.length <= maxSize ? waiting : waiting.slice(0, maxSize);
      waiting = batch === waiting ? [] : waiting.slice(maxSize);
      void dispatch(batch);
    }
    if (waiting.length > 0) return;
    due = false;
    cancelWindow();
    if (inFlight === 0 && idle) {
      idle.resolve();
      idle = undefined;
    }
  };

  const onWindowEnd = () => {
    timer = undefined;
    immediate = undefined;
    due = true;
    pump();
  };

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= maxSize) pump();
        else if (due || timer || immediate) return;
        else if (lingerMs === 0) immediate = setImmediate(onWindowEnd);
        else timer = setTimeout(onWindowEnd, lingerMs);
      });
    },
    flush() {
      due = true;
      pump();
      if (waiting.length === 0 && inFlight === 0) return Promise.resolve();
      idle ??= Promise.withResolvers<void>();
      return idle.promise;
    },
  };
}
