import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measurePart } from "../../bench/load/measure-load";
import { describeMachine } from "../../bench/machine";
import { parseCommand } from "../../bench/options";
import { createProgress } from "../../bench/progress";
import { writeResult } from "../../bench/report/write";
import { RESULT_VERSION, type RunResult } from "../../bench/result";
import { postProcessOperation } from "../../bench/scenarios/post-process";
import { startNullServer } from "../../bench/targets/null-server";

const HOW_TO_FIX =
  "Chromium renders the report in this test. Install it with `bash scripts/ensure-chromium.sh` (or `bun run test`, which runs it first).";
const dir = mkdtempSync(join(tmpdir(), "bench-report-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chromium(args: string[]): string {
  const binary = Bun.which("chromium");
  if (!binary) throw new Error(`chromium is not on PATH. ${HOW_TO_FIX}`);
  const run = Bun.spawnSync(
    [
      binary,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      // A profile of its own: CI may have no writable HOME, and a user's running Chromium must not be disturbed.
      `--user-data-dir=${join(dir, "profile")}`,
      ...args,
    ],
    { stderr: "pipe", timeout: 30_000 },
  );
  if (run.exitCode !== 0)
    throw new Error(`chromium exited with ${run.exitCode}: ${run.stderr.toString().slice(-2000)}`);
  return run.stdout.toString();
}

async function realRun(): Promise<RunResult> {
  const server = startNullServer();
  const { options } = parseCommand(["--rate", "300", "--duration", "2s", "--warmup", "0", "--quiet"]);
  const { operation, pool } = postProcessOperation(server.url, options);
  try {
    const signal = new AbortController().signal;
    const progress = createProgress({ quiet: true });
    const part = await measurePart(
      { name: "null server", unit: "requests", operation, options, progress, signal },
      "open",
      300,
      "null server",
    );
    return {
      version: RESULT_VERSION,
      scenario: "null",
      command: "bun bench null --rate 300 --duration 2s",
      startedAt: new Date().toISOString(),
      machine: describeMachine(),
      target: "in-process null server <script>alert(1)</script>",
      options: {},
      parts: [part],
      interrupted: false,
    };
  } finally {
    pool.close();
    await server.stop();
  }
}

describe("HTML report", () => {
  test("renders in headless Chromium with the latency distribution and throughput-over-time charts drawn", async () => {
    const { html } = writeResult(await realRun(), dir);
    const dom = chromium(["--dump-dom", `file://${html}`]);
    for (const id of ["latency-chart", "throughput-chart", "p99-chart"]) {
      const chart = new RegExp(`<svg[^>]*id="${id}"[\\s\\S]*?</svg>`).exec(dom)?.[0];
      expect(chart, `chart ${id} in the rendered DOM`).toBeDefined();
      const points = /<polyline[^>]*class="series"[^>]*points="([^"]+)"/.exec(chart ?? "")?.[1] ?? "";
      // A drawn line, not an empty chart: several points, all inside the 760 × 340 canvas.
      const coordinates = points.trim().split(/\s+/);
      expect(coordinates.length).toBeGreaterThan(1);
      for (const pair of coordinates) {
        const [x, y] = pair.split(",").map(Number);
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(760);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(340);
      }
    }
    // Text from the run is escaped, never executed or parsed as markup.
    expect(dom).not.toContain("<script>alert(1)</script>");
    // Self-contained: nothing to fetch.
    expect(dom).not.toMatch(/(src|href)="https?:/);
    const png = join(dir, "report.png");
    chromium([`--screenshot=${png}`, "--window-size=1000,1500", `file://${html}`]);
    expect(existsSync(png) && statSync(png).size).toBeGreaterThan(20_000);
  });
});
