import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommand } from "../../bench/options";
import type { RunResult } from "../../bench/result";
import { requireRedis, testConfig } from "../helpers/services";

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "bench-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function bench(...args: string[]) {
  const proc = Bun.spawn(["bun", "bench/cli.ts", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

function results(folder: string): RunResult[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith(".json"))
    .map((f) => JSON.parse(readFileSync(join(folder, f), "utf8")) as RunResult);
}

describe("bun bench CLI", () => {
  test("--help lists every scenario and the load-model flags", async () => {
    const { stdout, code } = await bench("--help");
    expect(code).toBe(0);
    for (const word of [
      "http",
      "e2e",
      "kafka",
      "cache",
      "cache-quality",
      "stream",
      "console",
      "--tokens",
      "--token-latency",
      "--embeddings",
      "--limit",
      "--calibrate",
      "--path",
      "baseline",
      "--rate",
      "--mode",
      "--url",
      "--redis-stats",
      "compare",
    ])
      expect(stdout).toContain(word);
  });

  test("`console` defaults to 10,000 events a minute for 10 minutes; other scenarios keep theirs; flags win", () => {
    const defaults = parseCommand(["console"]).options;
    expect(defaults.rate * 60).toBeCloseTo(10_000, 6);
    expect(defaults.durationMs).toBe(600_000);
    expect(defaults.warmupMs).toBe(10_000);
    const http = parseCommand(["http"]).options;
    expect([http.rate, http.durationMs, http.warmupMs]).toEqual([1000, 10_000, 2000]);
    const given = parseCommand(["console", "--rate", "20", "--duration", "15s", "--warmup", "0"]).options;
    expect([given.rate, given.durationMs, given.warmupMs]).toEqual([20, 15_000, 0]);
  });

  test.each([
    [["--rat", "5"], "Unknown option '--rat'"],
    [["--rate", "fast"], '--rate "fast": expected a number greater than 0'],
    [["--duration", "10 minutes"], "--duration"],
    [["--mode", "burst"], '--mode "burst": expected one of open, closed, step'],
    [["--url", "localhost:8000"], "--url"],
    [["--steps", "5000:1000:100"], "--steps"],
    [["nope"], 'unknown scenario "nope"'],
    [["cache-quality", "--embeddings", "openai"], '--embeddings "openai": expected one of local, simulated'],
    [["cache-quality", "--limit", "0"], '--limit "0"'],
    [["cache-quality", "--path", "kafka"], '--path "kafka": expected one of module, http, both'],
    [["console", "--url", "http://127.0.0.1:9"], "console starts the app itself"],
    [["kafka", "--url", "http://127.0.0.1:9"], "kafka starts the app itself"],
  ])("bad usage %p is refused with a message naming it and exit code 2", async (args, message) => {
    const { stderr, code } = await bench(...args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  test("compare prints b's figures as ratios of a's", async () => {
    const part = (throughput: number, p99: number) => ({
      name: "POST /process",
      mode: "open",
      durationS: 1,
      sent: 1,
      completed: 1,
      errors: {},
      throughput,
      unit: "requests",
      latencyMs: { p50: 1, p95: 2, p99, p999: p99, max: p99, mean: 1, count: 1 },
      timeline: [],
      resources: {},
      interrupted: false,
    });
    const result = (p: ReturnType<typeof part>) => ({
      version: 1,
      scenario: "http",
      command: "",
      startedAt: "t",
      machine: {},
      target: "",
      options: {},
      parts: [p],
      interrupted: false,
    });
    writeFileSync(join(dir, "a.json"), JSON.stringify(result(part(1000, 4))));
    writeFileSync(join(dir, "b.json"), JSON.stringify(result(part(1500, 2))));
    const { stdout, code } = await bench("compare", join(dir, "a.json"), join(dir, "b.json"));
    expect(code).toBe(0);
    expect(stdout).toMatch(/POST \/process\s+1,000\s+1,500\s+1\.50×\s+1\.00×\s+4\.00\s+2\.00\s+0\.50×/);
    const bad = await bench("compare", join(dir, "a.json"), join(dir, "missing.json"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("missing.json");
  });

  test("a target that refuses connections gives connect errors at once, not a hang", async () => {
    const out = join(dir, "refused");
    const port = Bun.serve({ port: 0, fetch: () => new Response() });
    const url = `http://127.0.0.1:${port.port}`;
    port.stop(true);
    const { code } = await bench(
      "http",
      "--url",
      url,
      "--rate",
      "100",
      "--duration",
      "1s",
      "--warmup",
      "0",
      "--out",
      out,
      "--quiet",
    );
    expect(code).toBe(0);
    const part = results(out)[0]?.parts[0];
    expect(part?.errors).toEqual({ connect: 100 });
    expect(part?.completed).toBe(0);
    expect(part?.latencyMs?.p99).toBeLessThan(1000);
  });

  test("`http` starts the app, measures POST /process and writes JSON and HTML", async () => {
    await (await requireRedis()).quit();
    const out = join(dir, "http");
    const { code, stdout, stderr } = await bench(
      "http",
      "--rate",
      "300",
      "--duration",
      "2s",
      "--warmup",
      "500ms",
      "--redis-url",
      "redis://127.0.0.1:6379/7",
      "--out",
      out,
      "--quiet",
    );
    expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    expect(stdout).toContain("POST /process");
    const [result] = results(out);
    const part = result?.parts[0];
    expect(part?.completed).toBe(600);
    expect(part?.errors).toEqual({});
    expect(part?.resources.target?.cpuPercent).toBeGreaterThan(0);
    expect(readdirSync(out).some((f) => f.endsWith(".html"))).toBe(true);
  });

  test("`e2e` measures POST → result and reports the app's own percentiles for the same tasks", async () => {
    const out = join(dir, "e2e");
    const { code, stderr } = await bench(
      "e2e",
      "--rate",
      "50",
      "--duration",
      "3s",
      "--warmup",
      "1s",
      "--latency",
      "20",
      "--redis-url",
      "redis://127.0.0.1:6379/7",
      "--out",
      out,
      "--quiet",
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const part = results(out)[0]?.parts[0];
    expect(part?.completed).toBe(150);
    expect(part?.extra?.app_count).toBe(150);
    // Every task waits the 20 ms of the simulated LLM, on both sides.
    expect(part?.latencyMs?.p50).toBeGreaterThanOrEqual(20);
    expect(Number(part?.extra?.app_p50_ms)).toBeGreaterThanOrEqual(20);
  });

  test("`http --redis-stats` adds Redis commands, round trips and CPU per accepted task", async () => {
    await (await requireRedis()).quit();
    const out = join(dir, "redis-stats");
    const { code, stderr, stdout } = await bench(
      ...["http", "--rate", "200", "--duration", "1s", "--warmup", "300ms", "--redis-stats"],
      ...["--redis-url", "redis://127.0.0.1:6379/7", "--out", out, "--quiet"],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("redis_commands_per_task");
    const extra = results(out)[0]?.parts[0]?.extra ?? {};
    expect(extra.redis_tasks).toBe(200);
    // At least the enqueue script's EVALSHA and what it runs; other clients of the server can only add.
    expect(Number(extra.redis_commands_per_task)).toBeGreaterThan(0);
    expect(Number(extra.redis_reads_per_task)).toBeGreaterThan(0);
    expect(Number(extra.redis_evalsha_per_task)).toBeGreaterThan(0);
    expect(Number(extra.redis_cpu_us_per_task)).toBeGreaterThanOrEqual(0);
    expect(String(extra.redis_note)).toContain("server-wide");
  });

  test("`stream` measures time to first token, from the POST and from the mock's send, beside time to result", async () => {
    const out = join(dir, "stream");
    // The test Redis (REDIS_URL), database 7: emptied by the harness like the other scenarios'.
    const redisUrl = new URL(testConfig.redisUrl);
    redisUrl.pathname = "/7";
    const { code, stderr } = await bench(
      "stream",
      ...["--rate", "10", "--duration", "3s", "--warmup", "1s", "--latency", "20"],
      ...["--tokens", "30", "--token-latency", "3"],
      ...["--redis-url", redisUrl.toString(), "--out", out, "--quiet"],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const [toResult, fromPost, fromMock] = results(out)[0]?.parts ?? [];
    expect(toResult?.completed).toBe(30);
    expect(toResult?.errors).toEqual({});
    // 20 ms before the first token, then 29 gaps of 3 ms before the last.
    expect(toResult?.latencyMs?.p50).toBeGreaterThanOrEqual(20 + 29 * 3);
    expect(toResult?.extra?.token_events_per_task).toBeGreaterThanOrEqual(20);
    expect(fromPost?.latencyMs?.count).toBe(30);
    expect(fromPost?.latencyMs?.p50).toBeGreaterThanOrEqual(20);
    expect(fromPost?.latencyMs?.p50).toBeLessThan(toResult?.latencyMs?.p50 as number);
    // Every measured task's first token was found in the mock's records, and the relay is faster than the model.
    expect(fromMock?.latencyMs?.count).toBe(30);
    expect(fromMock?.latencyMs?.p50).toBeGreaterThan(0);
    expect(fromMock?.latencyMs?.p50).toBeLessThan(fromPost?.latencyMs?.p50 as number);
  });

  test("`kafka` produces events with their own ids and measures event → result through the consumer role", async () => {
    const out = join(dir, "kafka");
    const { code, stderr } = await bench(
      "kafka",
      ...["--rate", "50", "--duration", "3s", "--warmup", "1s", "--latency", "20"],
      ...["--redis-url", "redis://127.0.0.1:6379/7", "--out", out, "--quiet"],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const part = results(out)[0]?.parts[0];
    expect(part?.completed).toBe(150);
    expect(part?.errors).toEqual({});
    // Every event waits the 20 ms of the simulated LLM, plus the consumer's fetch.
    expect(part?.latencyMs?.p50).toBeGreaterThanOrEqual(20);
    // Each result read from the results topic matched an event the harness was waiting for.
    expect(part?.extra?.results_unexpected).toBe(0);
  });

  test("`cache` runs a hit/miss mix and reports the app's hits per tier and embedding calls per request", async () => {
    const out = join(dir, "cache");
    const { code, stderr } = await bench(
      "cache",
      ...["--rate", "50", "--duration", "3s", "--warmup", "1s", "--latency", "20"],
      ...[
        "--mix",
        "exact=0.5,near=0.25,unique=0.25",
        "--redis-url",
        "redis://127.0.0.1:6379/7",
        "--out",
        out,
        "--quiet",
      ],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const part = results(out)[0]?.parts[0];
    expect(part?.completed).toBe(150);
    expect(part?.errors).toEqual({});
    const extra = part?.extra ?? {};
    expect(Number(extra.cache_exact_hits)).toBeGreaterThan(0);
    expect(Number(extra.cache_semantic_hits)).toBeGreaterThan(0);
    expect(Number(extra.cache_misses)).toBeGreaterThan(0);
    expect(Number(extra.cache_hit_rate)).toBeGreaterThan(0.4);
    expect(Number(extra.embedding_calls_per_request)).toBeLessThan(1);
  });

  test("`cache-quality` runs a spread of labelled pairs through the cache and writes rates per kind, the sweep and the calibration", async () => {
    await (await requireRedis()).quit();
    const out = join(dir, "cache-quality");
    const { code, stderr, stdout } = await bench(
      ...["cache-quality", "--embeddings", "simulated", "--limit", "60", "--calibrate", "--out", out, "--quiet"],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("CACHE_SIMILARITY_THRESHOLDS=");
    const result = results(out)[0];
    const quality = result?.cacheQuality;
    expect(result?.parts[0]?.completed).toBe(60);
    expect(quality?.pairs).toBe(60);
    expect(quality?.threshold).toBe(0.9);
    expect(quality?.safeguards).toContain("no LLM verification");
    // Spread over the set: both same-answer and different-answer kinds are measured.
    expect(quality?.kinds.some((k) => k.same)).toBe(true);
    expect(quality?.kinds.some((k) => !k.same)).toBe(true);
    const surface = quality?.kinds.find((k) => k.kind === "surface");
    expect(surface?.withGuard.rate).toBe(1);
    // The guard never serves what the threshold alone refused.
    for (const k of quality?.kinds ?? []) expect(k.withGuard.served).toBeLessThanOrEqual(k.thresholdOnly.served);
    expect(quality?.sweep.length).toBe(40);
    expect(quality?.calibration?.length).toBeGreaterThan(0);
    expect(readdirSync(out).some((f) => f.endsWith(".html"))).toBe(true);
    expect(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith(".html")) ?? ""), "utf8")).toContain(
      "sweep-chart",
    );
  });

  test("`cache-quality --path http` sends each pair through the app (A, then B) and reports B's from_cache per kind", async () => {
    await (await requireRedis()).quit();
    const out = join(dir, "cache-quality-http");
    const { code, stderr } = await bench(
      ...["cache-quality", "--path", "http", "--embeddings", "simulated", "--limit", "20", "--out", out, "--quiet"],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const quality = results(out)[0]?.cacheQuality;
    expect(quality?.paths).toEqual(["http"]);
    expect(quality?.falseHitRate).toBeUndefined();
    const http = quality?.http;
    expect(http?.pairs).toBe(20);
    expect(http?.errors).toBe(0);
    expect(http?.kinds.some((k) => k.same)).toBe(true);
    expect(http?.kinds.some((k) => !k.same)).toBe(true);
    // A "surface" pair normalises to A's exact key: the app serves it from the exact tier.
    expect(http?.kinds.find((k) => k.kind === "surface")).toMatchObject({ rate: 1, tiers: { exact: 1 } });
    expect(typeof http?.falseHitRate).toBe("number");
    expect(typeof http?.paraphraseHitRate).toBe("number");
    expect(http?.agreement).toBeUndefined();
  });

  test("`cache-quality` with the local model unreachable exits 2 and says how to start it", async () => {
    const proc = Bun.spawn(["bun", "bench/cli.ts", "cache-quality", "--quiet"], {
      cwd: ROOT,
      env: { ...process.env, EMBEDDING_BASE_URL: "http://127.0.0.1:9/v1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(2);
    expect(stderr).toContain("services:up");
  });

  test("`console` opens /dashboard in Chromium under HTTP and Kafka load and reports its busy share, heap and DOM nodes", async () => {
    const out = join(dir, "console");
    const redisUrl = new URL(testConfig.redisUrl);
    redisUrl.pathname = "/47";
    const { code, stderr, stdout } = await bench(
      ...["console", "--rate", "20", "--duration", "15s", "--warmup", "2s", "--latency", "5"],
      ...["--redis-url", redisUrl.toString(), "--out", out, "--quiet"],
    );
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("console: main thread busy");
    const result = results(out)[0];
    const part = result?.parts[0];
    expect(part?.completed).toBe(300);
    expect(part?.errors).toEqual({});
    const report = result?.console;
    // A sample every 5 s of a 15 s run (a third of it).
    expect(report?.sampleEveryS).toBe(5);
    expect(report?.samples.length).toBeGreaterThanOrEqual(2);
    for (const sample of report?.samples ?? []) {
      expect(sample.busy).toBeGreaterThan(0);
      expect(sample.busy).toBeLessThan(1);
      expect(sample.mainThreadCpu).toBeGreaterThan(0);
      expect(sample.heapMiB).toBeGreaterThan(0);
      expect(sample.nodes).toBeGreaterThan(100);
      expect(sample.documentNodes).toBeGreaterThan(100);
    }
    expect(typeof report?.heapMiB.slopePerMin).toBe("number");
    // The probes' rows were seen, and the page's counters caught up with /metrics once the load drained.
    expect(report?.completionToPageMs.seen).toBeGreaterThan(0);
    expect(report?.final.pageCompleted).toBe(report?.final.metricsCompleted);
    expect(report?.final.pageFailed).toBe(report?.final.metricsFailed);
    // 1 event in 50 fails on purpose: the warm-up's and the measured part's 340 events hold a few.
    expect(report?.final.metricsFailed).toBeGreaterThan(0);
    expect(part?.extra?.console_busy_overall).toBe(Math.round((report?.busy.overall ?? 0) * 1e4) / 1e4);
    const html = readdirSync(out).find((f) => f.endsWith(".html")) ?? "";
    expect(readFileSync(join(out, html), "utf8")).toContain("console-busy-chart");
  }, 90_000);
});
