import { describe, expect, test } from "bun:test";
import { decide } from "../../src/ingest/backpressure";

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
});
