/**
 * The circuit breaker per provider and model, against the real Redis, with
 * two breakers on two connections standing for two processes: what one
 * learns, the other knows (issue 17 §3).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import { type Admission, createCircuitBreaker } from "../../src/llm/circuit-breaker";
import { testConfig } from "../helpers/services";

let a: Redis;
let b: Redis;
const prefix = `test:breaker:${crypto.randomUUID()}`;
const options = { failures: 3, cooldownMs: 300, prefix };

beforeAll(() => {
  a = new Redis(testConfig.redisUrl);
  b = new Redis(testConfig.redisUrl);
});
afterAll(async () => {
  const keys = await a.keys(`${prefix}:*`);
  if (keys.length > 0) await a.del(...keys);
  await a.quit();
  await b.quit();
});

const go = (admission: Admission) => {
  if (!admission.go) throw new Error("expected the call to go");
  return admission;
};

describe("circuit breaker shared through Redis", () => {
  test("opens after N consecutive failures seen by any process; one probe after the cooldown; its success closes it", async () => {
    const one = createCircuitBreaker({ redis: a, ...options });
    const two = createCircuitBreaker({ redis: b, ...options });
    const model = "openai/gpt-4o-mini";
    expect(await one.record(model, go(await one.admit(model)), false)).toBeUndefined();
    expect(await two.record(model, go(await two.admit(model)), false)).toBeUndefined();
    expect(await one.record(model, go(await one.admit(model)), false)).toBe("opened");
    // Open for every process.
    const skipped = await two.admit(model);
    expect(skipped.go).toBe(false);
    expect(skipped.go === false && skipped.retryAfterMs).toBeGreaterThan(200);
    await Bun.sleep(320);
    // After the cooldown exactly one call, in one process, is the probe; the others still skip.
    const admissions = await Promise.all([one.admit(model), two.admit(model), one.admit(model), two.admit(model)]);
    const probes = admissions.filter((x) => x.go);
    expect(probes).toHaveLength(1);
    expect(probes[0]).toMatchObject({ go: true, probe: true });
    expect(await one.record(model, probes[0] as Admission & { go: true }, true)).toBe("closed");
    expect(await two.admit(model)).toMatchObject({ go: true, probe: false, failures: 0 });
  });

  test("a failed probe keeps it open for another cooldown; a success in between resets the count", async () => {
    const breaker = createCircuitBreaker({ redis: a, ...options });
    const model = "anthropic/claude-3-5-haiku-latest";
    await breaker.record(model, go(await breaker.admit(model)), false);
    await breaker.record(model, go(await breaker.admit(model)), false);
    // A success between failures: they are no longer consecutive.
    await breaker.record(model, go(await breaker.admit(model)), true);
    expect(await breaker.admit(model)).toMatchObject({ go: true, failures: 0 });
    for (let i = 0; i < 3; i++) await breaker.record(model, go(await breaker.admit(model)), false);
    expect((await breaker.admit(model)).go).toBe(false);
    await Bun.sleep(320);
    const probe = go(await breaker.admit(model));
    expect(probe.probe).toBe(true);
    expect(await breaker.record(model, probe, false)).toBe("reopened");
    expect((await breaker.admit(model)).go).toBe(false);
  });

  test("models are apart: one open circuit leaves another model of the same provider alone", async () => {
    const breaker = createCircuitBreaker({ redis: a, ...options });
    for (let i = 0; i < 3; i++)
      await breaker.record("cohere/command-r", go(await breaker.admit("cohere/command-r")), false);
    expect((await breaker.admit("cohere/command-r")).go).toBe(false);
    expect((await breaker.admit("cohere/command-r-plus")).go).toBe(true);
  });
});
