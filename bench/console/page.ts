/**
 * The operator console in a real headless Chromium (Debian's, as the browser tests use it), driven over the
 * DevTools protocol by puppeteer-core, and what the `console` scenario samples of it:
 *
 * - the main thread's busy share: Performance.getMetrics' TaskDuration (the renderer main thread's time in
 *   tasks of every kind: script, style, layout, paint, GC) over its Timestamp, between two readings;
 * - the JS heap used (JSHeapUsedSize) and the DOM nodes alive (Nodes), each read right after a forced full GC
 *   (HeapProfiler.collectGarbage), so what is left is what the page holds; the GC's own time is kept out of
 *   the busy share (the next interval starts after it);
 * - long tasks (a PerformanceObserver on "longtask": over 50 ms, what a user feels as jank);
 * - the time from a task's end to the page showing it: a MutationObserver notes when the Live sentiment counts
 *   change, and their total then (the page counts every sentiment_analysis completion of its stream); the scenario
 *   follows the same stream and knows when the n-th of them ended (its finished_at).
 *
 * Beside the busy share (wall time in tasks, which a CPU shared with the app stretches), the CPU time of the
 * renderer's main thread from /proc: what the page really costs a core.
 *
 * The instrumentation is two observers and a short array drained at each sample: its cost is in the figures,
 * and small (a sum of four numbers per redraw of the counts).
 */
import { readFileSync } from "node:fs";
import puppeteer, { type Browser, type CDPSession, type Page } from "puppeteer-core";
import { processTree } from "../measure/resources";
import { MissingServiceError } from "../options";
import type { PageMetrics } from "./analysis";

export interface ConsolePage {
  browser: Browser;
  page: Page;
  client: CDPSession;
  /** The browser's root process, for its CPU and RSS. */
  pid: number | undefined;
  close(): Promise<void>;
}

/** Opens /dashboard of a deployment without API keys (the page then needs none) and waits until it is live. */
export async function openConsolePage(appUrl: string): Promise<ConsolePage> {
  const executablePath = Bun.which("chromium");
  if (!executablePath) {
    throw new MissingServiceError(
      "chromium is not on PATH: the console scenario drives Debian's Chromium. Install it with `bash scripts/ensure-chromium.sh`",
    );
  }
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(`${appUrl}/dashboard`);
    await page.waitForSelector('#sentiment[data-live="true"]', { timeout: 20_000 });
    await page.waitForSelector('#tasks[data-loaded="true"]', { timeout: 20_000 });
    await page.evaluate(() => {
      const bench = { shown: [] as [number, number][], longTasks: 0, longTaskMs: 0, longTaskMaxMs: 0 };
      (window as unknown as { __bench: typeof bench }).__bench = bench;
      const tiles = ["positive", "neutral", "negative", "unlabelled"].map((label) =>
        document.querySelector(`[data-metric="sentiment-${label}"]`),
      );
      let total = 0;
      new MutationObserver(() => {
        const now = tiles.reduce((sum, tile) => sum + Number(tile?.textContent), 0);
        if (now !== total) bench.shown.push([Date.now(), now]);
        total = now;
      }).observe(document.querySelector("#sentiment") as Node, { subtree: true, childList: true, characterData: true });
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          bench.longTasks++;
          bench.longTaskMs += entry.duration;
          bench.longTaskMaxMs = Math.max(bench.longTaskMaxMs, entry.duration);
        }
      }).observe({ type: "longtask" });
    });
    const client = await page.createCDPSession();
    await client.send("Performance.enable");
    return {
      browser,
      page,
      client,
      pid: browser.process()?.pid,
      close: () => browser.close(),
    };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

export async function readMetrics(client: CDPSession): Promise<PageMetrics> {
  const { metrics } = await client.send("Performance.getMetrics");
  return Object.fromEntries(metrics.map((m) => [m.name, m.value])) as unknown as PageMetrics;
}

export interface PageDrain {
  /** [the page's clock (epoch ms), the sentiment completions it counts then], at each change of the count. */
  shown: [number, number][];
  longTasks: number;
  longTaskMs: number;
  longTaskMaxMs: number;
  documentNodes: number;
}

/** What the page's observers noted since the last drain, and the nodes in its document. */
export function drainPage(page: Page): Promise<PageDrain> {
  return page.evaluate(() => {
    const bench = (
      window as unknown as {
        __bench: { shown: [number, number][]; longTasks: number; longTaskMs: number; longTaskMaxMs: number };
      }
    ).__bench;
    const out = {
      shown: bench.shown.splice(0),
      longTasks: bench.longTasks,
      longTaskMs: bench.longTaskMs,
      longTaskMaxMs: bench.longTaskMaxMs,
      documentNodes: document.getElementsByTagName("*").length,
    };
    bench.longTasks = 0;
    bench.longTaskMs = 0;
    return out;
  });
}

/** A figure of the page's Overview (data-metric), as a number. */
export function pageNumber(page: Page, name: string): Promise<number> {
  return page.$eval(`[data-metric="${name}"]`, (node) => Number(node.textContent));
}

const readText = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** CPU seconds (user + system) of one thread, from /proc; undefined when it is gone. */
export function threadCpuSeconds(thread: { pid: number; tid: number }): number | undefined {
  const stat = readText(`/proc/${thread.pid}/task/${thread.tid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The main thread of the browser's busiest renderer process: the page's, once it has loaded (a spare renderer has
 * done next to nothing). It is the process's first thread (tid = pid; Linux names it after the process, not
 * CrRendererMain). Undefined off Linux.
 */
export function rendererMainThread(browserPid: number | undefined): { pid: number; tid: number } | undefined {
  if (browserPid === undefined) return undefined;
  let best: { pid: number; tid: number; cpu: number } | undefined;
  for (const pid of processTree(browserPid)) {
    if (!(readText(`/proc/${pid}/cmdline`) ?? "").includes("--type=renderer")) continue;
    const cpu = threadCpuSeconds({ pid, tid: pid });
    if (cpu !== undefined && (!best || cpu > best.cpu)) best = { pid, tid: pid, cpu };
  }
  return best && { pid: best.pid, tid: best.tid };
}
