import { describe, expect, test } from "bun:test";
import { createRecorder } from "../../bench/measure/recorder";
import { percentiles } from "../../bench/result";

describe("recorder", () => {
  test("percentiles of known latencies are exact within the histogram's 3 significant digits", () => {
    const recorder = createRecorder(0);
    // Latencies 1..1000 ms, each once, shuffled: P50 = 500, P95 = 950, P99 = 990, P99.9 = 999, max = 1000.
    const order = Array.from({ length: 1000 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    for (const ms of order) recorder.record(0, ms, { ok: true, sentAt: 0 });
    const p = percentiles(recorder.latency);
    const close = (actual: number, expected: number) =>
      expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * 0.001 + 0.001);
    close(p.p50, 500);
    close(p.p95, 950);
    close(p.p99, 990);
    close(p.p999, 999);
    close(p.max, 1000);
    expect(p.count).toBe(1000);
  });

  test("latency counts from the intended time; service time from the real send; errors are counted by kind", () => {
    const recorder = createRecorder(0);
    recorder.record(10, 60, { ok: true, sentAt: 50 });
    recorder.record(20, 70, { ok: false, kind: "http_503", sentAt: 20 });
    recorder.record(30, 5030, { ok: false, kind: "timeout", sentAt: 30 });
    expect(percentiles(recorder.latency).max).toBeCloseTo(5000, 0);
    // Service times 10, 50 and 5000 ms: the first request left 40 ms late.
    expect(percentiles(recorder.service).p50).toBeCloseTo(50, 1);
    expect(percentiles(recorder.sendLag).max).toBeCloseTo(40, 1);
    expect(recorder.completed).toBe(1);
    expect(recorder.errors).toEqual({ http_503: 1, timeout: 1 });
  });

  test("the timeline has one point per second with that second's completions and P99", () => {
    const recorder = createRecorder(0);
    for (let i = 0; i < 100; i++) recorder.record(i * 10, i * 10 + 2, { ok: true });
    recorder.record(1500, 1800, { ok: true });
    recorder.tick(2000);
    expect(recorder.timeline.map((p) => p.completed)).toEqual([100, 1]);
    expect(recorder.timeline[0]?.p99).toBeCloseTo(2, 1);
    expect(recorder.timeline[1]?.p99).toBeCloseTo(300, 0);
  });

  test("finishing a run keeps its last, partial second in the timeline (a run that ends at 2,999 ms has three)", () => {
    const recorder = createRecorder(0);
    recorder.record(100, 102, { ok: true });
    recorder.record(1100, 1102, { ok: true });
    // A stall's answers land in the third second, and the run ends before it is whole.
    recorder.record(1200, 2100, { ok: true });
    recorder.finish(2999);
    expect(recorder.timeline.map((p) => p.completed)).toEqual([1, 1, 1]);
    expect(recorder.timeline[2]?.p99).toBeCloseTo(900, 0);
    // Nothing in the trailing second: no empty point is added.
    const quiet = createRecorder(0);
    quiet.record(100, 102, { ok: true });
    quiet.finish(1000);
    expect(quiet.timeline.length).toBe(1);
  });
});
