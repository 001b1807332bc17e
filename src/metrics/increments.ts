/**
 * What a process has counted since its last flush, as increments of Redis
 * keys: fields of hashes (counters, per-second rate buckets) and 64-bit
 * counters of strings (histogram buckets, histogram.ts). Increments commute,
 * so processes never coordinate; a flush that fails gives its increments
 * back to go out with the next one, and a process killed -9 loses what it
 * counted since its last flush, and nothing else.
 *
 * Histogram counters go out as BITFIELD's own INCRBY operations. Measured
 * (BENCHMARKS.md "Metrics flush") against one HINCRBY per bucket field (Redis
 * 2-7× slower, ioredis as slow) and against the increments packed into one
 * argument of a Lua script that calls BITFIELD (client 1 ms instead of 10,
 * but Redis 9 ms instead of 2.5: Redis is the part every process shares).
 */
import type { ChainableCommander } from "ioredis";

interface Pending {
  /** A hash's fields (HINCRBY), or a string's i64 counters by index (BITFIELD INCRBY). */
  kind: "hash" | "counters";
  increments: Map<string | number, number>;
  /** EXPIRE after the increments, and given back after a failed flush only until this epoch ms. */
  expiry?: { seconds: number; untilMs: number };
}

export type TakenIncrements = ReadonlyMap<string, Pending>;

export interface Increments {
  /** Adds `n` (an integer: HINCRBY takes no fractions) to `field` of hash `key`. */
  addToField(key: string, field: string, n: number, expiry?: Pending["expiry"]): void;
  /** Adds `n` to the i64 counter number `index` of string `key`. */
  addToCounter(key: string, index: number, n: number): void;
  readonly empty: boolean;
  /** Every pending increment, leaving none. */
  take(): TakenIncrements;
  /** Queues taken increments on a MULTI: one HINCRBY per field, one BITFIELD per string, the EXPIREs. */
  queue(tx: ChainableCommander, taken: TakenIncrements): void;
  /** Taken increments a flush could not send, back among the pending ones; those of expired keys are dropped. */
  giveBack(taken: TakenIncrements, nowMs: number): void;
  /** The pending increments of one hash, for a log line. */
  fieldsOf(key: string): Record<string, number>;
}

/** BITFIELD arguments adding each increment to its i64 counter (`#i`: the i-th 64-bit slot). */
function bitfieldIncrements(increments: ReadonlyMap<string | number, number>): string[] {
  const args: string[] = [];
  for (const [index, n] of increments) args.push("INCRBY", "i64", `#${index}`, String(n));
  return args;
}

export function createIncrements(): Increments {
  let pending = new Map<string, Pending>();
  const add = (kind: Pending["kind"], key: string, at: string | number, n: number, expiry?: Pending["expiry"]) => {
    if (n === 0) return;
    let entry = pending.get(key);
    if (!entry) {
      entry = { kind, increments: new Map(), expiry };
      pending.set(key, entry);
    }
    entry.increments.set(at, (entry.increments.get(at) ?? 0) + n);
  };
  return {
    addToField: (key, field, n, expiry) => add("hash", key, field, n, expiry),
    addToCounter: (key, index, n) => add("counters", key, index, n),
    get empty() {
      return pending.size === 0;
    },
    take() {
      const taken = pending;
      pending = new Map();
      return taken;
    },
    queue(tx, taken) {
      for (const [key, { kind, increments, expiry }] of taken) {
        if (kind === "hash") for (const [field, n] of increments) tx.hincrby(key, String(field), n);
        else tx.call("BITFIELD", key, ...bitfieldIncrements(increments));
        if (expiry) tx.expire(key, expiry.seconds);
      }
    },
    giveBack(taken, nowMs) {
      for (const [key, { kind, increments, expiry }] of taken) {
        if (expiry && expiry.untilMs < nowMs) continue;
        for (const [at, n] of increments) add(kind, key, at, n, expiry);
      }
    },
    fieldsOf: (key) => Object.fromEntries(pending.get(key)?.increments ?? []),
  };
}
