import { describe, expect, test } from "bun:test";
import { ConcurrencyController, type ControllerSample } from "../../src/queue/concurrency-controller";
import { TakeGate } from "../../src/queue/take-gate";
import { latencySampler, meanLatency, parseLatency } from "../../src/util/latency";

const idle: ControllerSample = {
  inFlight: 0,
  peakInFlight: 0,
  completed: 0,
  busyMs: 0,
  throttled: 0,
  eventLoopDelayMs: 10,
  rssMb: 100,
  ratePerSecond: undefined,
  workers: 1,
};

/** A window where the process uses its whole limit and jobs take `latencyMs`. */
function busy(c: ConcurrencyController, over: Partial<ControllerSample> = {}): ControllerSample {
  const limit = c.current().limit;
  return { ...idle, inFlight: limit, peakInFlight: limit, completed: 100, busyMs: 100 * 1000, ...over };
}

describe("ConcurrencyController", () => {
  test("starts at the initial limit, probing", () => {
    const c = new ConcurrencyController({ initial: 32 });
    expect(c.current()).toMatchObject({ limit: 32, reason: "probing" });
  });

  test("Little's law: rate × mean latency × headroom, reached at most ×growth per window", () => {
    const c = new ConcurrencyController({ initial: 32, headroom: 1.2, growth: 2, max: 100_000 });
    const limits: number[] = [];
    for (let i = 0; i < 12; i++) {
      limits.push(c.update(busy(c, { ratePerSecond: 2000, busyMs: 100 * 1200 })).limit);
    }
    // 2000/s × 1.2 s × 1.2 = 2880
    expect(limits.at(-1)).toBe(2880);
    expect(c.current().reason).toBe("rate_limit×latency");
    expect(c.current().target).toBe(2880);
    for (let i = 1; i < limits.length; i++)
      expect(limits[i] as number).toBeLessThanOrEqual((limits[i - 1] as number) * 2);
  });

  test("the rate limit is shared by the live workers", () => {
    const c = new ConcurrencyController({ initial: 32, headroom: 1, max: 100_000 });
    for (let i = 0; i < 12; i++) c.update(busy(c, { ratePerSecond: 2000, workers: 4 }));
    expect(c.current().limit).toBe(500); // 2000/4 × 1 s
  });

  test("the target follows the latency down, at once", () => {
    const c = new ConcurrencyController({ initial: 32, headroom: 1, max: 100_000 });
    for (let i = 0; i < 12; i++) c.update(busy(c, { ratePerSecond: 1000 }));
    expect(c.current().limit).toBe(1000);
    for (let i = 0; i < 30; i++) c.update(busy(c, { ratePerSecond: 1000, busyMs: 100 * 100 }));
    expect(c.current().limit).toBeLessThan(110);
    expect(c.current().limit).toBeGreaterThanOrEqual(100);
  });

  test("bounded by the configured maximum", () => {
    const c = new ConcurrencyController({ initial: 32, max: 1000 });
    for (let i = 0; i < 12; i++) c.update(busy(c, { ratePerSecond: 5000 }));
    expect(c.current()).toMatchObject({ limit: 1000, reason: "max" });
  });

  test("never below the floor", () => {
    const c = new ConcurrencyController({ initial: 32, min: 8 });
    for (let i = 0; i < 5; i++) c.update(busy(c, { ratePerSecond: 1, busyMs: 100 * 10 }));
    expect(c.current()).toMatchObject({ limit: 8, reason: "floor" });
  });

  test("without a rate limit: grows while there is demand and the latency is flat", () => {
    const c = new ConcurrencyController({ initial: 32, max: 100_000 });
    for (let i = 0; i < 5; i++) c.update(busy(c));
    expect(c.current()).toMatchObject({ limit: 1024, reason: "probing" });
  });

  test("without demand the limit stays", () => {
    const c = new ConcurrencyController({ initial: 32 });
    for (let i = 0; i < 5; i++) c.update({ ...idle, inFlight: 3, peakInFlight: 5, completed: 10, busyMs: 10_000 });
    expect(c.current()).toMatchObject({ limit: 32, reason: "probing" });
  });

  test("without a rate limit: stops growing when the latency rises", () => {
    const c = new ConcurrencyController({ initial: 32, max: 100_000 });
    for (let i = 0; i < 3; i++) c.update(busy(c));
    const before = c.current().limit;
    for (let i = 0; i < 3; i++) c.update(busy(c, { busyMs: 100 * 5000 }));
    expect(c.current()).toMatchObject({ limit: before, reason: "latency" });
  });

  test("event-loop delay above the threshold shrinks the limit and stops growth", () => {
    const c = new ConcurrencyController({ initial: 1000, max: 100_000, eventLoopDelayMs: 100 });
    c.update(busy(c, { eventLoopDelayMs: 250 }));
    expect(c.current()).toMatchObject({ limit: 900, reason: "event_loop" });
    // Below what the rate limit needs (5,000/s × 1 s): it holds, neither growing nor shrinking.
    c.update(busy(c, { eventLoopDelayMs: 250, ratePerSecond: 5000 }));
    expect(c.current()).toMatchObject({ limit: 900, reason: "event_loop" });
    // The loop keeps up again: growth resumes.
    c.update(busy(c, { ratePerSecond: 5000 }));
    expect(c.current().limit).toBeGreaterThan(900);
  });

  test("a late event loop never cuts the limit below the rate limit's share × latency: that only builds a backlog", () => {
    const c = new ConcurrencyController({ initial: 32, max: 100_000, headroom: 1.2, eventLoopDelayMs: 100 });
    for (let i = 0; i < 12; i++) c.update(busy(c, { ratePerSecond: 2000, busyMs: 100 * 1000 }));
    expect(c.current()).toMatchObject({ limit: 2400, reason: "rate_limit×latency" });
    const limits: number[] = [];
    for (let i = 0; i < 10; i++)
      limits.push(c.update(busy(c, { ratePerSecond: 2000, busyMs: 100 * 1000, eventLoopDelayMs: 300 })).limit);
    // 10 % a window, down to 2,000/s × 1 s and no further: the headroom goes, the slots the rate needs stay.
    expect(limits.slice(0, 2)).toEqual([2160, 2000]);
    expect(Math.min(...limits)).toBe(2000);
    expect(c.current().reason).toBe("event_loop");
    // Without a rate limit there is no such level: it keeps shrinking while the loop is late.
    const free = new ConcurrencyController({ initial: 1000, max: 100_000, eventLoopDelayMs: 100 });
    for (let i = 0; i < 3; i++) free.update(busy(free, { eventLoopDelayMs: 300 }));
    expect(free.current()).toMatchObject({ limit: 729, reason: "event_loop" });
  });

  test("a 429 cuts to 70 % of what was in flight, then grows by a constant step (AIMD)", () => {
    const c = new ConcurrencyController({ initial: 32, max: 100_000, headroom: 1 });
    for (let i = 0; i < 12; i++) c.update(busy(c, { ratePerSecond: 2000 }));
    expect(c.current().limit).toBe(2000);
    c.update(busy(c, { ratePerSecond: 2000, throttled: 3 }));
    expect(c.current()).toMatchObject({ limit: 1400, reason: "429 backoff" });
    const a = c.update(busy(c, { ratePerSecond: 2000 })).limit;
    const b = c.update(busy(c, { ratePerSecond: 2000 })).limit;
    const d = c.update(busy(c, { ratePerSecond: 2000 })).limit;
    expect(a).toBe(1440); // step: 2 % of 2000
    expect(b - a).toBe(d - b);
    // Another 429: multiplicative again, from what was in flight.
    c.update(busy(c, { ratePerSecond: 2000, throttled: 1 }));
    expect(c.current().limit).toBe(Math.floor(d * 0.7));
    // Recovers to the rate-limit target, and the backoff no longer binds.
    for (let i = 0; i < 100; i++) c.update(busy(c, { ratePerSecond: 2000 }));
    expect(c.current()).toMatchObject({ limit: 2000, reason: "rate_limit×latency", backoffCeiling: undefined });
  });

  test("a 429 with few jobs in flight backs off from those, not from the idle limit", () => {
    const c = new ConcurrencyController({ initial: 1000, max: 100_000 });
    c.update({ ...idle, inFlight: 100, peakInFlight: 100, completed: 10, busyMs: 10_000, throttled: 1 });
    expect(c.current()).toMatchObject({ limit: 70, reason: "429 backoff" });
  });

  test("429s without a rate limit also back off, then grow additively, not by doubling", () => {
    const c = new ConcurrencyController({ initial: 256, max: 100_000 });
    c.update(busy(c, { throttled: 5 }));
    expect(c.current()).toMatchObject({ limit: 179, reason: "429 backoff" });
    for (let i = 0; i < 10; i++) c.update(busy(c));
    expect(c.current()).toMatchObject({ limit: 179 + 10 * 5, reason: "429 backoff" });
  });

  test("memory: the budget over the measured RSS per job", () => {
    const c = new ConcurrencyController({ initial: 32, max: 100_000, memoryBudgetMb: 600 });
    c.setBaseRss(100);
    // 1,000 jobs in flight cost 100 MiB (0.1 MiB each): at most 5,000 fit in 500 MiB above the base.
    for (let i = 0; i < 40; i++)
      c.update(busy(c, { ratePerSecond: 20_000, inFlight: 1000, peakInFlight: 1000, rssMb: 200 }));
    expect(c.current()).toMatchObject({ limit: 5000, reason: "memory" });
    expect(c.current().mbPerJob).toBeCloseTo(0.1, 3);
    // The jobs turn out heavier: 0.5 MiB each → 1,000.
    for (let i = 0; i < 40; i++)
      c.update(busy(c, { ratePerSecond: 20_000, inFlight: 1000, peakInFlight: 1000, rssMb: 600 }));
    expect(c.current().limit).toBeLessThanOrEqual(1010);
    expect(c.current().reason).toBe("memory");
  });

  test("latency excludes nothing it is not given; an idle window keeps the estimate", () => {
    const c = new ConcurrencyController({ initial: 32, headroom: 1, max: 100_000 });
    for (let i = 0; i < 12; i++) c.update(busy(c, { ratePerSecond: 100 }));
    const latency = c.current().latencyMs;
    c.update({ ...idle, ratePerSecond: 100 });
    expect(c.current().latencyMs).toBe(latency as number);
    expect(c.current().limit).toBe(100);
  });
});

describe("TakeGate", () => {
  const lane = (gate: TakeGate, name = "q") => gate.openLane(name);

  test("grants takes up to the limit; a job ending lets the next one in", async () => {
    const gate = new TakeGate(400);
    const q = lane(gate);
    const granted: number[] = [];
    for (let i = 0; i < 401; i++) void gate.acquire(q).then((ok) => ok && granted.push(i));
    await Bun.sleep(0);
    expect(granted.length).toBe(100); // a quarter of the limit per queue may be taking
    // Takes return jobs, which start: more takes go.
    for (let round = 0; round < 20; round++) {
      const taking = gate.used - gate.inFlight;
      for (let i = 0; i < taking; i++) {
        gate.taken(q, `j${round}-${i}`);
        gate.started(q, `j${round}-${i}`);
      }
      await Bun.sleep(0);
    }
    expect(gate.inFlight).toBe(400);
    expect(gate.used).toBe(400);
    gate.ended();
    await Bun.sleep(0);
    expect(gate.used).toBe(400); // the freed permit went to the waiting tick, now taking
    expect(gate.inFlight).toBe(399);
  });

  test("lowering the limit stops takes until enough jobs end; nothing is cut", async () => {
    const gate = new TakeGate(8);
    const q = lane(gate);
    for (let i = 0; i < 8; i++) {
      expect(await gate.acquire(q)).toBe(true);
      gate.taken(q, `j${i}`);
      gate.started(q, `j${i}`);
    }
    gate.setLimit(4);
    let granted = false;
    void gate.acquire(q).then((ok) => {
      granted = ok;
    });
    for (let i = 0; i < 4; i++) gate.ended();
    await Bun.sleep(0);
    expect(granted).toBe(false);
    expect(gate.inFlight).toBe(4);
    gate.ended();
    await Bun.sleep(0);
    expect(granted).toBe(true);
  });

  test("a take that brings no job gives its permit back", async () => {
    const gate = new TakeGate(4);
    const q = lane(gate);
    expect(await gate.acquire(q)).toBe(true);
    expect(gate.used).toBe(1);
    gate.taken(q, undefined);
    expect(gate.used).toBe(0);
  });

  test("an empty queue's blocked takes do not use up the permits of the others", async () => {
    const gate = new TakeGate(64);
    const empty = lane(gate, "empty");
    const busyLane = lane(gate, "busy");
    let emptyGranted = 0;
    for (let i = 0; i < 64; i++) void gate.acquire(empty).then((ok) => ok && emptyGranted++);
    await Bun.sleep(0);
    expect(emptyGranted).toBe(8); // 64 / (4 × 2 lanes)
    let started = 0;
    for (let round = 0; round < 20; round++) {
      const grants: Promise<boolean>[] = [];
      for (let i = 0; i < 8; i++) grants.push(gate.acquire(busyLane));
      await Bun.sleep(0);
      for (const [i, g] of grants.entries()) {
        if (await Promise.race([g, Bun.sleep(1).then(() => false)])) {
          gate.taken(busyLane, `b${round}-${i}`);
          gate.started(busyLane, `b${round}-${i}`);
          started++;
        }
      }
    }
    expect(started).toBe(56); // the limit minus the empty queue's blocked takes
  });

  test("a queue whose last take left a backlog takes with every free permit; once empty, it is capped again", async () => {
    const gate = new TakeGate(64);
    const q = lane(gate);
    let granted = 0;
    const ask = (n: number) => {
      for (let i = 0; i < n; i++) void gate.acquire(q).then((ok) => ok && granted++);
    };
    ask(64);
    await Bun.sleep(0);
    expect(granted).toBe(16); // 64 / (4 × 1 lane): as if the queue were empty
    gate.taken(q, "j0", true); // that take found more jobs waiting
    await Bun.sleep(0);
    expect(granted).toBe(64); // no cap: every permit but the one taken
    expect(gate.used).toBe(64);
    for (let i = 1; i < 64; i++) gate.taken(q, undefined, false); // the queue ran dry
    ask(64);
    await Bun.sleep(0);
    expect(gate.used).toBe(1 + 16);
  });

  test("closing a lane refuses its waiting ticks and forgets its taken-not-started jobs", async () => {
    const gate = new TakeGate(4);
    const q = lane(gate);
    for (let i = 0; i < 2; i++) {
      await gate.acquire(q);
      gate.taken(q, `j${i}`);
    }
    const waiting = [gate.acquire(q), gate.acquire(q), gate.acquire(q)];
    await Bun.sleep(0);
    expect(gate.used).toBe(3); // two taken, one more taking (1 take per lane at a limit of 4)
    gate.closeLane(q);
    gate.taken(q, "late"); // the take in flight comes back (aborted) after the close
    expect(await Promise.all(waiting)).toEqual([true, false, false]);
    expect(gate.used).toBe(0);
    expect(await gate.acquire(q)).toBe(false);
  });
});

describe("latency distributions", () => {
  test("parses fixed, uniform and log-normal specs", () => {
    expect(parseLatency("50")).toEqual({ min: 50, max: 50 });
    expect(parseLatency("20-80")).toEqual({ min: 20, max: 80 });
    expect(parseLatency("lognormal:1000:4000")).toEqual({ median: 1000, p99: 4000 });
    expect(parseLatency("80-20")).toBeUndefined();
    expect(parseLatency("lognormal:1000:500")).toBeUndefined();
    expect(parseLatency("lognormal:0:10")).toBeUndefined();
    expect(parseLatency("fast")).toBeUndefined();
  });

  test("log-normal samples have the asked median and P99", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const draw = latencySampler({ median: 1000, p99: 4000 }, random);
    const samples = Array.from({ length: 100_000 }, draw).sort((a, b) => a - b);
    expect(samples[50_000] as number).toBeGreaterThan(970);
    expect(samples[50_000] as number).toBeLessThan(1030);
    expect(samples[99_000] as number).toBeGreaterThan(3700);
    expect(samples[99_000] as number).toBeLessThan(4300);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeCloseTo(meanLatency({ median: 1000, p99: 4000 }), -1.5);
  });
});
