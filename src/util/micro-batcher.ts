/**
 * Coalesces concurrent calls into batches: items added within `windowMs` of
 * the first one (or until `maxSize` are waiting) are handed to `run` together,
 * and each caller gets its own result back. With `windowMs` 0 the batch is
 * what arrives before the next turn of the event loop, which is what callers
 * woken together by one earlier batch produce.
 *
 * Used for embeddings (one provider call instead of N) and KNN queries (one
 * Redis pipeline instead of N round trips).
 */
export interface MicroBatcher<I, O> {
  add(item: I): Promise<O>;
  /** Runs whatever is waiting now, without waiting for the window. */
  flush(): void;
}

export function createMicroBatcher<I, O>(options: {
  windowMs: number;
  maxSize: number;
  /** Returns one result per item, in order; a rejection rejects every caller of the batch. */
  run: (items: I[]) => Promise<O[]>;
}): MicroBatcher<I, O> {
  const { windowMs, maxSize, run } = options;
  let items: I[] = [];
  let waiters: { resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (items.length === 0) return;
    const batch = items;
    const callers = waiters;
    items = [];
    waiters = [];
    run(batch).then(
      (results) => {
        if (results.length !== callers.length) {
          const error = new Error(`batch returned ${results.length} results for ${callers.length} items`);
          for (const caller of callers) caller.reject(error);
          return;
        }
        for (const [i, caller] of callers.entries()) caller.resolve(results[i] as O);
      },
      (error: unknown) => {
        for (const caller of callers) caller.reject(error);
      },
    );
  };

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        items.push(item);
        waiters.push({ resolve, reject });
        if (items.length >= maxSize) flush();
        else if (!timer) timer = setTimeout(flush, windowMs);
      });
    },
    flush,
  };
}
