import { describe, expect, test } from "bun:test";
import {
  busyBetween,
  type ConsoleSample,
  lagsToPage,
  overallShare,
  type PageMetrics,
  percentileOf,
  slope,
  summarizeSeries,
} from "../../bench/console/analysis";
import { sampleEveryMs } from "../../bench/scenarios/console";

const metrics = (at: number, task: number, script = 0): PageMetrics => ({
  Timestamp: at,
  TaskDuration: task,
  ScriptDuration: script,
  LayoutDuration: 0,
  RecalcStyleDuration: 0,
  JSHeapUsedSize: 0,
  JSHeapTotalSize: 0,
  Nodes: 0,
  JSEventListeners: 0,
});

describe("the console scenario's arithmetic", () => {
  test("the busy share is the task time between two readings over the wall time between them", () => {
    const share = busyBetween(metrics(100, 4, 1), metrics(110, 5.5, 1.5));
    expect(share.wallS).toBe(10);
    expect(share.busy).toBeCloseTo(0.15, 10);
    expect(share.script).toBeCloseTo(0.05, 10);
    // No time between them: nothing to divide.
    expect(busyBetween(metrics(1, 1), metrics(1, 2)).busy).toBe(0);
  });

  test("the overall share weighs each interval by its wall time", () => {
    const sample = (wallS: number, busy: number) => ({ wallS, busy }) as ConsoleSample;
    expect(overallShare([sample(10, 0.1), sample(30, 0.3)], (s) => s.busy)).toBeCloseTo(0.25, 10);
    expect(overallShare([], (s) => s.busy)).toBe(0);
  });

  test("a least-squares slope: flat is 0, a line is its slope, per minute in the summary", () => {
    expect(slope([])).toBe(0);
    expect(slope([[1, 5]])).toBe(0);
    expect(
      slope([
        [0, 3],
        [1, 3],
        [2, 3],
      ]),
    ).toBe(0);
    expect(
      slope([
        [0, 1],
        [1, 3],
        [2, 5],
      ]),
    ).toBeCloseTo(2, 10);
    // x in seconds: 1 MiB more every 30 s is 2 MiB a minute.
    const summary = summarizeSeries([
      [0, 10],
      [30, 11],
      [60, 12],
    ]);
    expect(summary).toEqual({ first: 10, last: 12, min: 10, max: 12, slopePerMin: 2, lastHalfSlopePerMin: 2 });
  });

  test("percentiles of sorted values, and the sampling period of short and long runs", () => {
    expect(percentileOf([], 50)).toBe(0);
    expect(percentileOf([1, 2, 3, 4], 50)).toBe(2);
    expect(percentileOf([1, 2, 3, 4], 95)).toBe(4);
    expect(sampleEveryMs(600_000)).toBe(10_000);
    expect(sampleEveryMs(30_000)).toBe(10_000);
    expect(sampleEveryMs(15_000)).toBe(5000);
    expect(sampleEveryMs(2000)).toBe(1000);
  });
});

describe("the time from a completion to the page counting it", () => {
  test("each completion of the window is matched with the first count that includes it", () => {
    // Completions 1..5 ended at 100, 110, 120, 130, 140; the page counted 2 at 150, 5 at 400.
    const { completions, lags } = lagsToPage(
      [100, 110, 120, 130, 140],
      [
        [150, 2],
        [400, 5],
      ],
      { from: 105, to: 1000 },
    );
    // The first ended before the window: not measured.
    expect(completions).toBe(4);
    expect(lags).toEqual([40, 280, 270, 260]);
  });

  test("a completion the page never counted is not seen", () => {
    const { completions, lags } = lagsToPage([100, 200], [[150, 1]], { from: 0, to: 1000 });
    expect(completions).toBe(2);
    expect(lags).toEqual([50]);
  });
});
