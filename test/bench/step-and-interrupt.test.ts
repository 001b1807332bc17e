import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stepHeld } from "../../bench/load/measure-load";
import type { PartResult, RunResult } from "../../bench/result";
import { waitFor } from "../helpers/services";

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

/** The first progress line of the measured phase: `[null server] measure 5.0s  sent 2500  done 2499 ...`. */
const MEASURING = /\] measure ([\d.]+)s\s+sent \d+\s+done (\d+)/;

describe("Ctrl-C", () => {
  test("stops the run cleanly and still writes the partial results (exit 130)", async () => {
    // No --quiet: the progress line on stderr (one every 5 s when stderr is not a terminal) says the measured phase runs.
    const proc = Bun.spawn(
      ["bun", "bench/cli.ts", "null", "--rate", "500", "--duration", "60s", "--warmup", "0", "--out", dir],
      {
        cwd: ROOT,
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    let stderr = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) stderr += decoder.decode(chunk);
    })();
    const seen = await waitFor(
      () => {
        if (proc.exitCode !== null)
          throw new Error(`the bench exited with ${proc.exitCode} before measuring:\n${stderr}`);
        const line = MEASURING.exec(stderr);
        const done = Number(line?.[2] ?? 0);
        return done > 0 ? { elapsedS: Number(line?.[1]), done } : undefined;
      },
      "the bench's progress line of the measured phase, with requests done",
      30_000,
      50,
    );
    proc.kill("SIGINT");
    const code = await proc.exited;
    await reading;
    const stdout = await new Response(proc.stdout).text();
    expect(code).toBe(130);
    expect(stdout).toContain("INTERRUPTED");
    expect(stderr).toContain("interrupted: stopping the load, writing partial results");
    const file = readdirSync(dir).find((f) => f.endsWith(".json"));
    const result = JSON.parse(readFileSync(join(dir, file ?? "missing"), "utf8")) as RunResult;
    expect(result.interrupted).toBe(true);
    const measured = result.parts[0];
    // What ran before the signal (the progress line came ~5 s in), not the 60 s asked for.
    expect(measured?.durationS).toBeGreaterThanOrEqual(seen.elapsedS - 0.1);
    expect(measured?.durationS).toBeLessThan(seen.elapsedS + 10);
    // Everything done before the signal is in the partial results.
    expect(measured?.completed).toBeGreaterThanOrEqual(seen.done);
    expect(measured?.errors).toEqual({});
  }, 60_000);
});
