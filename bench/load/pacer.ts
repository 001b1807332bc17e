/**
 * Wakes the open loop at each request's intended send time with sub-ms
 * precision. Timers in Bun fire no sooner than ~1.08 ms, so a timer-paced
 * loop sends up to a millisecond late and that lateness lands in every
 * latency (it is measured from the intended time). Here a wait shorter than
 * a timer is an Atomics.wait on a private futex (the thread sleeps; no spin),
 * followed by a setImmediate so socket I/O is served between two sends.
 */

export interface Pacer {
  stop(): void;
}

/** Below this, waiting with a timer would overshoot: sleep on the futex instead. */
const TIMER_FLOOR_MS = 1.5;
/** Longest a single futex sleep may block the event loop (answers wait in the kernel meanwhile). */
const MAX_BLOCK_MS = 0.5;

export function startPacer(options: {
  /** performance.now() of the next send, or undefined when nothing more is due. */
  nextDueAt: () => number | undefined;
  /** Sends everything due. */
  fire: () => void;
  now?: () => number;
}): Pacer {
  const now = options.now ?? (() => performance.now());
  const futex = new Int32Array(new SharedArrayBuffer(4));
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let immediate: ReturnType<typeof setImmediate> | undefined;

  const loop = () => {
    timer = undefined;
    immediate = undefined;
    if (stopped) return;
    options.fire();
    const due = options.nextDueAt();
    if (due === undefined) return;
    const wait = due - now();
    if (wait > TIMER_FLOOR_MS) {
      timer = setTimeout(loop, wait - TIMER_FLOOR_MS + 0.5);
      return;
    }
    if (wait > 0) Atomics.wait(futex, 0, 0, Math.min(wait, MAX_BLOCK_MS));
    immediate = setImmediate(loop);
  };
  loop();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}
