import { describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import { createBackpressure, decide } from "../../src/ingest/backpressure";
import type { PauseReason } from "../../src/ingest/consumer-protocol";
import { createLogger } from "../../src/log";

const settings = { highWatermark: 100, lowWatermark: 50, rateLimitPauseMs: 1000 };
const sample = (waiting: number, now = 10_000) => ({ waiting, limiterTat: undefined, now });

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
    const redis = {
      pipeline: () => ({
        llen: function () {
          return this;
        },
        get: function () {
          return this;
        },
        hexists: function () {
          return this;
        },
        exec: async () => [
          [null, waiting],
          [null, null],
          [null, 0],
        ],
      }),
    } as unknown as Redis;
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
});
