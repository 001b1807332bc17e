/**
 * The metrics janitor in the real Redis: the histogram fields of a process
 * that stopped flushing (killed, OOM) are folded into `_retired` once it has
 * been unseen long enough, and /metrics reads the same before and after;
 * a live process keeps its fields; concurrent janitors fold each sample
 * once; a process folded while it was only cut off counts its samples once
 * when it comes back. Clocks are injected, never waited for.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import { createEventBus, type EventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { foldWriter, type HistogramHashes } from "../../src/metrics/histogram-hashes";
import {
  createMetricsRecorder,
  HIST_REAP_AFTER_MS,
  HISTOGRAMS,
  metricsKeys,
  reapDeadProcesses,
} from "../../src/metrics/recorder";
import { readMetrics } from "../../src/metrics/snapshot";
import type { RedisClient } from "../../src/redis/client";
import { deleteByPrefix, requireRedis, uniquePrefix, waitFor } from "../helpers/services";

const prefixes: string[] = [];
let redis: RedisClient;

function newPrefix(name: string): string {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return prefix;
}

const T0 = Date.UTC(2026, 0, 1);

/** A recorder on its own bus whose clock the test moves; its timer never fires unless asked for. */
function processAt(
  prefix: string,
  processId: string,
  clock: { now: number },
  options: { flushIntervalMs?: number; reapAfterMs?: number } = {},
) {
  const lines: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
  const bus = createEventBus();
  const recorder = createMetricsRecorder({
    redis,
    bus,
    processId,
    logger,
    prefix,
    flushIntervalMs: options.flushIntervalMs ?? 3_600_000,
    reapAfterMs: options.reapAfterMs,
    now: () => clock.now,
  });
  return { bus, recorder, lines };
}

/** One task that feeds every histogram: latency, processing, LLM call and cache lookup. */
function work(bus: EventBus, ms: number) {
  bus.emit("cache.lookup", { tier: "miss", ms: ms / 10, round_trips: 1 });
  bus.emit("llm.call", { provider: "p", model: "m", ms: ms / 2, ok: true, prompt_tokens: 1, completion_tokens: 1 });
  bus.emit("task.succeeded", {
    task_id: "t",
    queue: "q",
    task_type: "summarization",
    latency_ms: ms,
    processing_ms: ms / 2,
    from_cache: false,
    tokens: 2,
  });
}

/** `count` processes `dead-{p}` that flush `size(p)` tasks each and are then killed; returns how many tasks. */
async function killedAfterFlush(prefix: string, clock: { now: number }, count: number, size: (p: number) => number) {
  let tasks = 0;
  for (let p = 0; p < count; p++) {
    const dead = processAt(prefix, `dead-${p}`, clock);
    for (let i = 1; i <= size(p); i++) work(dead.bus, p * 100 + i);
    tasks += size(p);
    await dead.recorder.flush();
  }
  return tasks;
}

const snapshot = (prefix: string) => readMetrics({ redis, prefix, queues: [], now: T0, startedAt: T0 });
/** The process id of a field: a recorder names its fields `{processId}/{nonce}`. */
const idOf = (field: string) => field.replace(/\/[^/]*$/, "");
const idsIn = async (key: string) => (await redis.hkeys(key)).map(idOf).sort();
const fields = (prefix: string) => idsIn(metricsKeys(prefix).histogram("latency"));
/** A janitor pass; the process ids it folded. */
const reap = async (janitor: Redis, prefix: string, now: number) =>
  (await reapDeadProcesses(janitor, { prefix, now })).map(idOf).sort();
const hashesOf = (prefix: string): HistogramHashes => {
  const keys = metricsKeys(prefix);
  return { seen: keys.histSeen, histograms: HISTOGRAMS.map(keys.histogram), retired: "_retired" };
};

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteByPrefix(redis, prefix);
  await redis.quit();
});

describe("metrics janitor", () => {
  test("a process that stopped flushing is folded into _retired after reapAfterMs, and /metrics reads the same before and after", async () => {
    const prefix = newPrefix("janitor-fold");
    const keys = metricsKeys(prefix);
    const clock = { now: T0 };
    // A process that closed already: the fold must add to _retired, not replace it.
    const closed = processAt(prefix, "closed", clock);
    for (let i = 1; i <= 30; i++) work(closed.bus, 5000 + i);
    await closed.recorder.close();
    const dead = processAt(prefix, "dead", clock);
    for (let i = 1; i <= 300; i++) work(dead.bus, i);
    await dead.recorder.flush();
    // "dead" is killed here: it never flushes or closes again.
    const live = processAt(prefix, "live", clock);
    for (let i = 0; i < 100; i++) work(live.bus, 2000);
    await live.recorder.flush();
    const before = await snapshot(prefix);
    expect(before.latency_ms.count).toBe(430);
    expect(await fields(prefix)).toEqual(["_retired", "dead", "live"]);

    clock.now = T0 + HIST_REAP_AFTER_MS - 1;
    await live.recorder.flush();
    expect(await reap(redis, prefix, clock.now)).toEqual([]);
    expect(await fields(prefix)).toEqual(["_retired", "dead", "live"]);

    clock.now = T0 + HIST_REAP_AFTER_MS + 1;
    await live.recorder.flush();
    expect(await reap(redis, prefix, clock.now)).toEqual(["dead"]);
    for (const name of HISTOGRAMS) expect(await idsIn(keys.histogram(name))).toEqual(["_retired", "live"]);
    expect(await idsIn(keys.histSeen)).toEqual(["live"]);
    const after = await snapshot(prefix);
    expect(after).toEqual(before);

    // Nothing left to fold: a second pass changes nothing.
    expect(await reap(redis, prefix, clock.now + 1)).toEqual([]);
    expect(await snapshot(prefix)).toEqual(before);
    await live.recorder.close();
    expect(await redis.exists(keys.histSeen)).toBe(0);
    expect(await snapshot(prefix)).toEqual(before);
  });

  test("a live process's fields are never folded, even when it flushes between the janitor's read and its fold", async () => {
    const prefix = newPrefix("janitor-live");
    const clock = { now: T0 };
    const idle = processAt(prefix, "idle", clock);
    for (let i = 1; i <= 10; i++) work(idle.bus, i);
    const busy = processAt(prefix, "busy", clock);
    // Each minute "busy" works and "idle" does not; an idle flush still says it is alive (as its timer's would).
    for (let minute = 0; minute <= 30; minute++) {
      clock.now = T0 + minute * 60_000;
      work(busy.bus, 100 + minute);
      await Promise.all([idle.recorder.flush(), busy.recorder.flush()]);
      expect(await reap(redis, prefix, clock.now + 1)).toEqual([]);
    }
    expect(await fields(prefix)).toEqual(["busy", "idle"]);

    // "busy" was unseen for longer than reapAfterMs when the janitor read it, and flushed before the fold went in.
    const janitor = redis.duplicate();
    try {
      await foldWriter(janitor, hashesOf(prefix), "nobody");
      const client = janitor as RedisClient & { histogramFold(...args: (string | number)[]): Promise<number> };
      const fold = client.histogramFold.bind(client);
      let slipped = false;
      client.histogramFold = async (...args) => {
        if (!slipped) {
          slipped = true;
          // Nothing new to write but its last-seen time: only that tells the janitor it is alive.
          await busy.recorder.flush();
        }
        return fold(...args);
      };
      clock.now += HIST_REAP_AFTER_MS + 60_000;
      await idle.recorder.flush();
      expect(await reap(janitor, prefix, clock.now)).toEqual([]);
      expect(slipped).toBe(true);
    } finally {
      janitor.disconnect();
    }
    expect(await fields(prefix)).toEqual(["busy", "idle"]);
    expect((await snapshot(prefix)).latency_ms.count).toBe(41);
    await Promise.all([idle.recorder.close(), busy.recorder.close()]);
    expect((await snapshot(prefix)).latency_ms.count).toBe(41);
  });

  test("two janitors running at once fold each dead process's samples exactly once", async () => {
    const prefix = newPrefix("janitor-race");
    const clock = { now: T0 };
    let expected = await killedAfterFlush(prefix, clock, 20, (p) => 50 + p);
    const live = processAt(prefix, "live", clock);
    for (let i = 0; i < 10; i++) work(live.bus, 7);
    expected += 10;
    clock.now = T0 + HIST_REAP_AFTER_MS + 1;
    await live.recorder.flush();
    const before = await snapshot(prefix);
    expect(before.latency_ms.count).toBe(expected);

    const janitors = [redis.duplicate(), redis.duplicate()];
    let reaped: string[][];
    try {
      reaped = await Promise.all(janitors.map((janitor) => reap(janitor, prefix, clock.now)));
    } finally {
      for (const janitor of janitors) janitor.disconnect();
    }
    const all = reaped.flat();
    expect(all.length).toBe(20);
    expect(new Set(all).size).toBe(20);
    expect(await fields(prefix)).toEqual(["_retired", "live"]);
    expect(await snapshot(prefix)).toEqual(before);
    await live.recorder.close();
    expect(await snapshot(prefix)).toEqual(before);
  });

  test("processes closing together while two janitors fold dead ones add every sample to _retired once", async () => {
    const prefix = newPrefix("janitor-shutdown");
    const clock = { now: T0 };
    let expected = await killedAfterFlush(prefix, clock, 10, (p) => 20 + p);
    clock.now = T0 + HIST_REAP_AFTER_MS + 1;
    const closing = Array.from({ length: 10 }, (_, p) => processAt(prefix, `closing-${p}`, clock));
    for (const [p, { bus, recorder }] of closing.entries()) {
      for (let i = 1; i <= 30 + p; i++) work(bus, 500 + p * 10 + i);
      await recorder.flush();
      // Recorded after the last flush: only close() carries these.
      for (let i = 1; i <= p; i++) work(bus, 2000 + i);
      expected += 30 + 2 * p;
    }

    const janitors = [redis.duplicate(), redis.duplicate()];
    let reaped: string[][];
    try {
      [reaped] = await Promise.all([
        Promise.all(janitors.map((janitor) => reap(janitor, prefix, clock.now))),
        ...closing.map(({ recorder }) => recorder.close()),
      ]);
    } finally {
      for (const janitor of janitors) janitor.disconnect();
    }
    expect(reaped.flat().sort()).toEqual(Array.from({ length: 10 }, (_, p) => `dead-${p}`).sort());
    expect(await fields(prefix)).toEqual(["_retired"]);
    expect(await redis.exists(metricsKeys(prefix).histSeen)).toBe(0);
    const m = await snapshot(prefix);
    expect(m.latency_ms.count).toBe(expected);
    expect(m.completed_tasks).toBe(expected);
  });

  test("a process folded while it was cut off counts its samples once when it flushes again", async () => {
    const prefix = newPrefix("janitor-back");
    const clock = { now: T0 };
    const away = processAt(prefix, "away", clock);
    for (let i = 1; i <= 100; i++) work(away.bus, i);
    await away.recorder.flush();
    const other = processAt(prefix, "other", clock);
    for (let i = 0; i < 10; i++) work(other.bus, 900);

    // "away" cannot reach Redis for longer than reapAfterMs, but keeps working; "other" folds it.
    for (let i = 1; i <= 50; i++) work(away.bus, 1000 + i);
    clock.now = T0 + HIST_REAP_AFTER_MS + 1;
    await other.recorder.flush();
    expect(await reap(redis, prefix, clock.now)).toEqual(["away"]);
    expect((await snapshot(prefix)).latency_ms.count).toBe(110);

    // Back: the first flush finds its fields folded and writes none of them; the next writes what was not folded.
    await away.recorder.flush();
    expect(away.lines.join("")).toContain("folded by another process's janitor");
    expect((await snapshot(prefix)).latency_ms.count).toBe(110);
    clock.now += 1000;
    await away.recorder.flush();
    expect(await fields(prefix)).toEqual(["_retired", "away", "other"]);
    const m = await snapshot(prefix);
    expect(m.latency_ms.count).toBe(160);
    expect(m.completed_tasks).toBe(160);
    expect(m.latency_ms.max).toBeGreaterThanOrEqual(1050);
    // Alive again: not folded, and its close adds only the rest.
    expect(await reap(redis, prefix, clock.now + 1)).toEqual([]);
    await Promise.all([away.recorder.close(), other.recorder.close()]);
    expect(await fields(prefix)).toEqual(["_retired"]);
    expect(await snapshot(prefix)).toEqual(m);
  });

  test("the flush timer runs the janitor about once a minute, folding dead processes but never its own", async () => {
    const prefix = newPrefix("janitor-timer");
    const clock = { now: T0 };
    const dead = processAt(prefix, "dead", clock);
    for (let i = 1; i <= 40; i++) work(dead.bus, i);
    await dead.recorder.flush();
    const reapAfterMs = 5 * 60_000;
    const live = processAt(prefix, "live", clock, { flushIntervalMs: 10, reapAfterMs });
    for (let i = 1; i <= 10; i++) work(live.bus, 3);
    await live.recorder.flush();
    const before = await snapshot(prefix);

    // Past reapAfterMs for "dead" (and past "live"'s first janitor pass, due 30 to 90 s after it started).
    clock.now = T0 + reapAfterMs + 1;
    await waitFor(async () => !(await fields(prefix)).includes("dead"), "the timer's janitor to fold the dead process");
    expect(await fields(prefix)).toEqual(["_retired", "live"]);
    expect(await snapshot(prefix)).toEqual(before);
    await live.recorder.close();
  });

  test("a process restarted under the same id (a container's PID 1) gets fields of its own: the killed one's samples still count", async () => {
    const prefix = newPrefix("janitor-same-id");
    const clock = { now: T0 };
    const killed = processAt(prefix, "1-w0-1", clock);
    for (let i = 1; i <= 100; i++) work(killed.bus, i);
    await killed.recorder.flush();
    clock.now += 1000;
    const restarted = processAt(prefix, "1-w0-1", clock);
    for (let i = 1; i <= 10; i++) work(restarted.bus, 1000 + i);
    await restarted.recorder.flush();
    expect(await fields(prefix)).toEqual(["1-w0-1", "1-w0-1"]);
    const before = await snapshot(prefix);
    expect(before.latency_ms.count).toBe(110);

    clock.now = T0 + HIST_REAP_AFTER_MS + 1;
    await restarted.recorder.flush();
    expect(await reap(redis, prefix, clock.now)).toEqual(["1-w0-1"]);
    expect(await fields(prefix)).toEqual(["1-w0-1", "_retired"]);
    expect(await snapshot(prefix)).toEqual(before);
    await restarted.recorder.close();
    expect(await snapshot(prefix)).toEqual(before);
  });

  test("a histogram field with no last-seen entry (written before there were any) is folded reapAfterMs after a janitor first saw it", async () => {
    const prefix = newPrefix("janitor-orphan");
    const keys = metricsKeys(prefix);
    const clock = { now: T0 };
    const orphan = processAt(prefix, "orphan", clock);
    for (let i = 1; i <= 10; i++) work(orphan.bus, i);
    await orphan.recorder.flush();
    const [field = ""] = await redis.hkeys(keys.histSeen);
    await redis.hdel(keys.histSeen, field);
    expect(await reap(redis, prefix, T0)).toEqual([]);
    expect(await redis.hget(keys.histSeen, field)).toBe(String(T0));
    expect(await reap(redis, prefix, T0 + HIST_REAP_AFTER_MS)).toEqual([]);
    expect(await reap(redis, prefix, T0 + HIST_REAP_AFTER_MS + 1)).toEqual(["orphan"]);
    expect(await fields(prefix)).toEqual(["_retired"]);
    expect((await snapshot(prefix)).latency_ms.count).toBe(10);
  });
});
