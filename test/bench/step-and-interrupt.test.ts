import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stepHeld } from "../../bench/load/measure-load";
import type { PartResult, RunResult } from "../../bench/result";

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "bench-step-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const part = (p99: number, throughput: number, errors: Record<string, number> = {}): PartResult => ({
  name: "x",
  mode: "open",
  rate: 1000,
  durationS: 10,
  sent: 10_000,
  completed: 10_000,
  errors,
  throughput,
  unit: "requests",
  latencyMs: { p50: 1, p95: 2, p99, p999: p99, max: p99, mean: 1, count: 10_000 },
  timeline: [],
  resources: {},
  interrupted: false,
});

describe("step mode", () => {
  test("a step holds only under the P99 target, with ≤ 0.1 % errors and ≥ 97 % of the asked rate", () => {
    expect(stepHeld(part(9.9, 1000), 10)).toBe(true);
    expect(stepHeld(part(10.1, 1000), 10)).toBe(false);
    expect(stepHeld(part(5, 960), 10)).toBe(false);
    expect(stepHeld(part(5, 1000, { http_503: 11 }), 10)).toBe(false);
    expect(stepHeld(part(5, 1000, { http_503: 10 }), 10)).toBe(true);
  });
});

describe("Ctrl-C", () => {
  test("stops the run cleanly and still writes the partial results (exit 130)", async () => {
    const proc = Bun.spawn(
      ["bun", "bench/cli.ts", "null", "--rate", "500", "--duration", "60s", "--warmup", "0", "--out", dir, "--quiet"],
      {
        cwd: ROOT,
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    await Bun.sleep(3000);
    proc.kill("SIGINT");
    const code = await proc.exited;
    const stdout = await new Response(proc.stdout).text();
    expect(code).toBe(130);
    expect(stdout).toContain("INTERRUPTED");
    const file = readdirSync(dir).find((f) => f.endsWith(".json"));
    const result = JSON.parse(readFileSync(join(dir, file ?? "missing"), "utf8")) as RunResult;
    expect(result.interrupted).toBe(true);
    const measured = result.parts[0];
    // About the 2-3 s that ran before the signal, not the 60 s asked for.
    expect(measured?.durationS).toBeLessThan(10);
    expect(measured?.completed).toBeGreaterThan(500);
    expect(measured?.errors).toEqual({});
  });
});
