import { describe, expect, test } from "bun:test";
import { createMetricsBroadcast } from "../../src/api/metrics-stream";
import type { MetricsSnapshot } from "../../src/metrics/snapshot";

const snapshot = (completed: number) => ({ completed_tasks: completed }) as MetricsSnapshot;

async function until(condition: () => boolean, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await Bun.sleep(5);
  }
}

describe("metrics broadcast", () => {
  test("every subscriber gets the same snapshot from one read per tick, however many listen", async () => {
    let reads = 0;
    const broadcast = createMetricsBroadcast({ read: async () => snapshot(++reads), intervalMs: 50 });
    const seen: number[][] = [[], [], [], [], []];
    const stops = seen.map((list) => broadcast.subscribe((s) => list.push(s.completed_tasks)));
    await until(() => reads >= 4);
    for (const stop of stops) stop();
    const readsAtStop = reads;
    // Every subscriber saw each read once, in order (the first may have joined after the first read ended).
    for (const list of seen) {
      expect(list.length).toBeGreaterThanOrEqual(readsAtStop - 1);
      expect(list).toEqual([...list].sort((a, b) => a - b));
      expect(new Set(list).size).toBe(list.length);
    }
    expect(seen[0]?.at(-1)).toBe(readsAtStop);
  });

  test("it reads nothing while nobody listens, and starts again for the next subscriber", async () => {
    let reads = 0;
    const broadcast = createMetricsBroadcast({ read: async () => snapshot(++reads), intervalMs: 20 });
    await Bun.sleep(60);
    expect(reads).toBe(0);
    const stop = broadcast.subscribe(() => {});
    await until(() => reads >= 2);
    stop();
    expect(broadcast.subscribers).toBe(0);
    const after = reads;
    await Bun.sleep(80);
    // At most the read that was in flight at the unsubscribe.
    expect(reads - after).toBeLessThanOrEqual(1);
  });

  test("a slow read makes the ticks that come during it no-ops instead of piling reads up", async () => {
    let inFlight = 0;
    let most = 0;
    let reads = 0;
    const broadcast = createMetricsBroadcast({
      read: async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await Bun.sleep(60);
        inFlight--;
        return snapshot(++reads);
      },
      intervalMs: 10,
    });
    const stop = broadcast.subscribe(() => {});
    await until(() => reads >= 3);
    stop();
    expect(most).toBe(1);
  });

  test("a failed read is reported and the next tick reads again", async () => {
    let reads = 0;
    const errors: unknown[] = [];
    const got: number[] = [];
    const broadcast = createMetricsBroadcast({
      read: async () => {
        reads++;
        if (reads === 1) throw new Error("redis went away");
        return snapshot(reads);
      },
      intervalMs: 20,
      onError: (error) => errors.push(error),
    });
    const stop = broadcast.subscribe((s) => got.push(s.completed_tasks));
    await until(() => got.length >= 1);
    stop();
    expect(errors.length).toBe(1);
    expect(got[0]).toBe(2);
  });
});
