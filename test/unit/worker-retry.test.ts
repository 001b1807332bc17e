import { describe, expect, test } from "bun:test";
import { AppError } from "../../src/errors";
import { JobTimeoutError } from "../../src/pipeline/llm-call";
import { classify } from "../../src/pipeline/process-task";
import { retryDelay } from "../../src/util/backoff";

describe("retry delay", () => {
  test("grows exponentially, with jitter between half and all of the exponential delay", () => {
    for (const [attempt, exponential] of [
      [1, 1000],
      [2, 2000],
      [3, 4000],
    ] as const) {
      expect(retryDelay(attempt, 1000, 60_000, 0, () => 0)).toBe(exponential / 2);
      expect(retryDelay(attempt, 1000, 60_000, 0, () => 0.999999)).toBe(exponential);
    }
  });

  test("is capped, and never shorter than the provider's Retry-After", () => {
    expect(retryDelay(20, 1000, 60_000, 0, () => 1)).toBe(60_000);
    expect(retryDelay(1, 100, 60_000, 1000, () => 0)).toBe(1000);
  });
});

describe("classify", () => {
  test("keeps an AppError's code, retriable flag and Retry-After", () => {
    const error = Object.assign(new AppError("LLM_RATE_LIMITED", "429", { retriable: true }), { retryAfterMs: 1000 });
    expect(classify(error)).toEqual({ code: "LLM_RATE_LIMITED", message: "429", retriable: true, retryAfterMs: 1000 });
  });

  test("a timeout is retriable and says so", () => {
    const recorded = classify(new JobTimeoutError(500));
    expect(recorded).toMatchObject({ code: "JOB_TIMEOUT", retriable: true });
    expect(recorded.message).toContain("timed out after 500 ms");
  });

  test("a TypeError is a bug: never retried", () => {
    expect(classify(new TypeError("x is undefined"))).toEqual({
      code: "INTERNAL",
      message: "an internal error stopped the task; the worker logged it",
      retriable: false,
    });
  });
});
