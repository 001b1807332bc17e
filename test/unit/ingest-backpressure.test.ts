import { describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import { createBackpressure, decide } from "../../src/ingest/backpressure";
import type { PauseReason } from "../../src/ingest/consumer-protocol";
import { createLogger } from "../../src/log";

const settings = { highWatermark: 100, lowWatermark: 50, rateLimitPauseMs: 1000 };
const sample = (waiting: number, now = 10_000) => ({ waiting, limiterTat: undefined, now });

/** What the backpressure check's pipeline reads: the queue's waiting count, the limiter's state, no operator pause. */
function fakeRedis(read: () => { waiting: number; tat: string | null }): Redis {
  const pipeline = {
    llen: () => pipeline,
    get: () => pipeline,
    hexists: () => pipeline,
    exec: async () => {
      const { waiting, tat } = read();
      return [
        [null, waiting],
        [null, tat],
        [null, 0],
      ];
    },
  };
  return { pipeline: () => pipeline } as unknown as Redis;
}

describe("backpressure", () => {
  test("pauses at the high watermark and resumes only below the low one", () => {
    expect(decide(sample(99), undefined, undefined, settings)).toBeUndefined();
    expect(decide(sample(100), undefined, undefined, settings)).toBe("queue_high_watermark");
    expect(decide(sample(70), "queue_high_watermark", undefined, settings)).toBe("queue_high_watermark");
    expect(decide(sample(50), "queue_high_watermark", undefined, settings)).toBeUndefined();
  });

  test("pauses once the LLM rate limiter has had no budget for the configured time, not before", () => {
    expect(decide(sample(0, 10_000), undefined, 9_500, settings)).toBeUndefined();
    expect(decide(sample(0, 10_000), undefined, 9_000, settings)).toBe("llm_rate_limited");
    expect(decide(sample(0, 10_000), "llm_rate_limited", undefined, settings)).toBeUndefined();
    expect(decide(sample(0, 10_000), undefined, 0, { ...settings, rateLimitPauseMs: 0 })).toBeUndefined();
  });

  test("an operator's pause outranks every other reason and holds until the operator resumes", () => {
    const paused = { ...sample(0), operatorPaused: true };
    expect(decide(paused, undefined, undefined, settings)).toBe("operator");
    expect(decide({ ...sample(500), operatorPaused: true }, "queue_high_watermark", 0, settings)).toBe("operator");
    // Resumed by the operator: the other reasons apply again at once.
    expect(decide(sample(500), "operator", undefined, settings)).toBe("queue_high_watermark");
    expect(decide(sample(0), "operator", undefined, settings)).toBeUndefined();
  });

  test("a waiting count reported by a consumer thread pauses at once, and only at or over the high watermark", async () => {
    const changes: (PauseReason | undefined)[] = [];
    let waiting = 0;
    const redis = fakeRedis(() => ({ waiting, tat: null }));
    const backpressure = createBackpressure({
      redis,
      settings,
      onChange: (reason) => changes.push(reason),
      logger: createLogger({ level: "silent" }),
    });
    backpressure.report(99);
    expect(changes).toEqual([]);
    backpressure.report(100);
    backpressure.report(180);
    expect(changes).toEqual(["queue_high_watermark"]);
    // The controller's own checks own the resume: still over the low watermark, then under it.
    waiting = 60;
    await backpressure.check();
    waiting = 40;
    await backpressure.check();
    expect(changes).toEqual(["queue_high_watermark", undefined]);
  });

  test("with a burst allowance (LLM_RATE_BURST), a limiter state within its tolerance is budget, not its absence", async () => {
    const now = Date.now();
    const logger = createLogger({ level: "silent" });
    // The limiter's theoretical arrival time 500 ms ahead: calls wait without a burst, go at once with a 1 s one.
    const redis = fakeRedis(() => ({ waiting: 0, tat: String(Date.now() + 500) }));
    const pausing = { highWatermark: 100, lowWatermark: 50, rateLimitPauseMs: 1 };
    const without = createBackpressure({ redis, settings: pausing, onChange: () => {}, logger });
    const withBurst = createBackpressure({
      redis,
      settings: { ...pausing, limiterToleranceMs: 1000 },
      onChange: () => {},
      logger,
    });
    await without.check();
    await withBurst.check();
    while (Date.now() < now + 5) await Bun.sleep(1);
    expect(await without.check()).toBe("llm_rate_limited");
    expect(await withBurst.check()).toBeUndefined();
  });
});
