/**
 * The operator console under load (issue 16, "Done when"): 2,000 tasks flow in, over HTTP and through Kafka,
 * some failing on purpose through the mock provider, while a real headless Chromium shows /dashboard. The
 * numbers the page shows are read from its DOM and compared with GET /metrics:
 *
 * - all along the run, every ~0.5 s: a /metrics read, then the page's accepted, completed and failed counters
 *   must reach it within 2 s, and must not be ahead of a /metrics read made after the page was read (the page
 *   shows a snapshot between the two: it is neither stale nor invented);
 * - halfway, with the load still flowing in but the workers' queues paused (so completions, latencies and the
 *   active and failed depths hold still while accepted and waiting keep growing): the latency figures, the latency
 *   chart's last points, every queue's depths and the counters equal /metrics' within 2 s;
 * - at the end, when every task has ended: all of them again, exactly.
 *
 * The latency chart gains a point a second throughout.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { openConsole, SCREENSHOTS } from "../helpers/browser";
import { type ConsoleApp, FAIL_TEXT, startConsoleApp } from "../helpers/console-app";
import { waitFor } from "../helpers/services";

const DB = 46;
const ADMIN_KEY = "load-admin-key-123";
const TASKS = 2000;
/**
 * One task in 20 fails for good (the mock answers 400 to its text): in every 40, the 8th (a Kafka event: the first
 * KAFKA_PER_TICK of each tick are) and the 40th (a post).
 */
const FAILING_EVERY = 20;
const fails = (i: number) => i % 40 === 7 || i % 40 === 39;
/** Tasks sent per tick, and the tick: 200 tasks/s, 40 % of them as Kafka events. */
const PER_TICK = 20;
const KAFKA_PER_TICK = 8;
const TICK_MS = 100;
const WITHIN_MS = 2000;

let setup: ConsoleApp;

beforeAll(async () => {
  setup = await startConsoleApp({
    name: "dash-load",
    db: DB,
    keys: { admin: ADMIN_KEY, tenant: "load-tenant-key-456" },
    env: { WORKER_CONCURRENCY: "2" },
  });
}, 60_000);

afterAll(async () => {
  if (setup) expect(await setup.stop()).toBe(0);
});

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

interface Snapshot {
  total_tasks: number;
  completed_tasks: number;
  failed_tasks: number;
  latency_ms: { p50: number; p95: number; p99: number; count: number };
  queues: Record<string, { waiting: number; active: number; delayed: number; failed: number }>;
}

async function metrics(): Promise<Snapshot> {
  const response = await fetch(`${setup.app.url}/metrics`, { headers: admin });
  expect(response.status).toBe(200);
  return (await response.json()) as Snapshot;
}

/** What the page shows, read from its DOM in one go. */
interface Shown {
  accepted: number;
  completed: number;
  failed: number;
  latency: { p50: number; p95: number; p99: number };
  /** The last point of each latency line, turned back into ms with the chart's scale (#latency-max). */
  chartLast: { p50: number; p95: number; p99: number };
  chartPoints: number;
  queues: Record<string, { waiting: number; active: number; delayed: number; failed: number }>;
}

const readPage = (page: Page): Promise<Shown> =>
  page.evaluate(() => {
    const number = (name: string) => Number(document.querySelector(`[data-metric="${name}"]`)?.textContent);
    const top = Number.parseFloat(document.querySelector("#latency-max")?.textContent ?? "");
    const lines = [...document.querySelectorAll("#latency-chart polyline")].map((line) =>
      (line.getAttribute("points") ?? "").split(" ").filter(Boolean),
    );
    // The chart is 160 high: y = 160 - value / top * 160.
    const last = (points: string[] | undefined) => {
      const y = Number(points?.at(-1)?.split(",")[1]);
      return ((160 - y) / 160) * top;
    };
    const queues: Shown["queues"] = {};
    for (const row of document.querySelectorAll<HTMLElement>("#queue-table tbody tr")) {
      const name = row.dataset.queue as string;
      const read = (state: string) => Number(row.querySelector(`[data-metric="queue:${name}:${state}"]`)?.textContent);
      queues[name] = {
        waiting: read("waiting"),
        active: read("active"),
        delayed: read("delayed"),
        failed: read("failed"),
      };
    }
    return {
      accepted: number("accepted"),
      completed: number("completed"),
      failed: number("failed"),
      latency: { p50: number("latency-p50"), p95: number("latency-p95"), p99: number("latency-p99") },
      chartLast: { p50: last(lines[0]), p95: last(lines[1]), p99: last(lines[2]) },
      chartPoints: lines[0]?.length ?? 0,
      queues,
    };
  });

/** What the page and /metrics both show, in one shape (queues by name, in the page's order). */
interface View {
  accepted: number;
  completed: number;
  failed: number;
  latency: { p50: number; p95: number; p99: number };
  queues: Record<string, { waiting: number; active: number; delayed: number; failed: number }>;
}

const byName = <T>(record: Record<string, T>) =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)));

function apiView(s: Snapshot): View {
  return {
    accepted: s.total_tasks,
    completed: s.completed_tasks,
    failed: s.failed_tasks,
    latency: {
      p50: Math.round(s.latency_ms.p50),
      p95: Math.round(s.latency_ms.p95),
      p99: Math.round(s.latency_ms.p99),
    },
    queues: byName(
      Object.fromEntries(
        Object.entries(s.queues).map(([name, d]) => [
          name,
          { waiting: d.waiting, active: d.active, delayed: d.delayed, failed: d.failed },
        ]),
      ),
    ),
  };
}

const shownView = (shown: Shown): View => ({
  accepted: shown.accepted,
  completed: shown.completed,
  failed: shown.failed,
  latency: shown.latency,
  queues: byName(shown.queues),
});

/** While the queues are paused, what holds still: completions, latencies, and the depths but waiting. */
const holdsStill = (v: View) => ({
  completed: v.completed,
  failed: v.failed,
  latency: v.latency,
  queues: Object.fromEntries(
    Object.entries(v.queues).map(([name, d]) => [name, { active: d.active, delayed: d.delayed, failed: d.failed }]),
  ),
});

/** What only grows (the counters; with the queues paused, what waits too). */
const counters = (v: View) => [v.accepted, v.completed, v.failed];
const countersAndWaiting = (v: View) => [...counters(v), ...Object.values(v.queues).map((d) => d.waiting)];

/** The chart's last points are the shown latencies, to the chart's resolution (a 160-pixel scale, 0.1 pixel). */
function expectChartAt(shown: Shown, latency: Snapshot["latency_ms"]) {
  for (const q of ["p50", "p95", "p99"] as const) {
    expect(Math.abs(shown.chartLast[q] - latency[q])).toBeLessThanOrEqual(Math.max(1, latency[q] * 0.02));
  }
}

/**
 * Figures that only grow: after a /metrics read, the page must show each at least as high within 2 s, and
 * none higher than a /metrics read made after that. Returns how long the page took to catch up (ms).
 */
async function follows(page: Page, pick: (v: View) => number[] = counters): Promise<number> {
  const before = pick(apiView(await metrics()));
  const started = Date.now();
  let shown = pick(shownView(await readPage(page)));
  while (shown.length !== before.length || shown.some((n, i) => !(n >= (before[i] as number)))) {
    if (Date.now() - started > WITHIN_MS) {
      throw new Error(`the page did not reach /metrics' figures in 2 s: ${JSON.stringify({ before, shown })}`);
    }
    await Bun.sleep(25);
    shown = pick(shownView(await readPage(page)));
  }
  const lag = Date.now() - started;
  const after = pick(apiView(await metrics()));
  for (const [i, n] of shown.entries()) expect(n).toBeLessThanOrEqual(after[i] as number);
  return lag;
}

/** Reads /metrics until two reads 1.2 s apart agree on what `pick` takes (the workers flush their counters each second). */
async function settled(pick: (v: View) => unknown, what: string, timeoutMs = 30_000): Promise<Snapshot> {
  let previous = JSON.stringify(pick(apiView(await metrics())));
  let snapshot: Snapshot | undefined;
  await waitFor(
    async () => {
      await Bun.sleep(1200);
      snapshot = await metrics();
      const now = JSON.stringify(pick(apiView(snapshot)));
      const same = now === previous;
      previous = now;
      return same;
    },
    what,
    timeoutMs,
    0,
  );
  return snapshot as Snapshot;
}

/** Within 2 s of a /metrics read, the page shows the same figures (what `pick` takes), and its chart ends on its latencies. */
async function pageEquals(page: Page, api: Snapshot, pick: (v: View) => unknown): Promise<Shown> {
  const wanted = pick(apiView(api));
  const started = Date.now();
  let shown = await readPage(page);
  while (JSON.stringify(pick(shownView(shown))) !== JSON.stringify(wanted)) {
    if (Date.now() - started > WITHIN_MS) expect(pick(shownView(shown))).toEqual(wanted);
    await Bun.sleep(25);
    shown = await readPage(page);
  }
  expectChartAt(shown, api.latency_ms);
  return shown;
}

describe("operator console under load", () => {
  test(`with ${TASKS} tasks flowing over HTTP and Kafka, some failing, the page follows /metrics within 2 s`, async () => {
    const { app, kafka, topic, prefix } = setup;
    const { page, outside } = await openConsole(setup.browser, app.url, ADMIN_KEY);
    await page.waitForFunction(`document.querySelector('[data-metric="accepted"]').textContent !== "–"`);
    const start = await metrics();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();

    const texts = ["I love this, it is great and fast", "terrible, awful and slow", "the parcel arrived on a tuesday"];
    const textOf = (i: number) => (fails(i) ? `${FAIL_TEXT} (#${i})` : `${texts[i % texts.length]} (#${i})`);
    const typeOf = (i: number) => (i % 2 === 0 ? "sentiment_analysis" : "summarization");
    const posted: Promise<void>[] = [];
    let sent = 0;
    let loadDone = false;
    let abandoned = false;
    const load = (async () => {
      while (sent < TASKS && !abandoned) {
        const due = Date.now() + TICK_MS;
        const events = [];
        for (let k = 0; k < PER_TICK && sent < TASKS; k++, sent++) {
          const i = sent;
          if (k < KAFKA_PER_TICK) {
            events.push({
              key: `user-${i % 7}`,
              value: JSON.stringify({
                event_id: `${prefix}-${i}`,
                text: textOf(i),
                task_type: typeOf(i),
                use_cache: false,
              }),
            });
            continue;
          }
          posted.push(
            fetch(`${app.url}/process`, {
              method: "POST",
              headers: { "content-type": "application/json", ...admin },
              body: JSON.stringify({ text: textOf(i), task_type: typeOf(i), use_cache: false }),
            }).then((response) => {
              expect(response.status).toBe(202);
            }),
          );
        }
        await producer.send({ topic, messages: events });
        await Bun.sleep(Math.max(0, due - Date.now()));
      }
      await Promise.all(posted);
    })().finally(() => {
      loadDone = true;
    });

    const lags: number[] = [];
    const chartPoints: number[] = [];
    let paused = false;
    try {
      // All along the run: the counters follow /metrics within 2 s, and the latency chart gains points.
      const queueNames = Object.keys(start.queues);
      expect(queueNames.length).toBeGreaterThan(0);
      while (!loadDone) {
        lags.push(await follows(page));
        chartPoints.push((await readPage(page)).chartPoints);
        if (!paused && sent >= TASKS / 2) {
          paused = true;
          // Halfway: the workers stop taking jobs while the tasks keep coming in.
          for (const queue of queueNames) {
            const response = await fetch(`${app.url}/admin/queues/${queue}/pause`, { method: "POST", headers: admin });
            expect(response.status).toBe(200);
          }
          const held = await settled(holdsStill, "the paused workers' last jobs to end and be counted");
          await pageEquals(page, held, holdsStill);
          // What keeps growing meanwhile (accepted, waiting) follows too.
          lags.push(await follows(page, countersAndWaiting));
          await page.screenshot({ path: join(SCREENSHOTS, "dashboard-load-paused.png") });
          for (const queue of queueNames) {
            const response = await fetch(`${app.url}/admin/queues/${queue}/resume`, { method: "POST", headers: admin });
            expect(response.status).toBe(200);
          }
        }
        await Bun.sleep(500);
      }
      await load;
      expect(paused).toBe(true);
    } finally {
      // A failed check stops the load rather than leave it sending to an app that is stopping.
      abandoned = true;
      await load.catch(() => {});
      await producer.disconnect();
    }

    // The end: every task ended, the failing ones failed.
    const ended = await settled((v) => v, "every task to end and be counted", 60_000);
    expect(ended.total_tasks - start.total_tasks).toBe(TASKS);
    expect(ended.completed_tasks + ended.failed_tasks - start.completed_tasks - start.failed_tasks).toBe(TASKS);
    expect(ended.failed_tasks - start.failed_tasks).toBe(TASKS / FAILING_EVERY);
    // Posts and Kafka events both failed (each path has its queue).
    expect(Object.values(ended.queues).filter((d) => d.failed > 0).length).toBeGreaterThanOrEqual(2);
    // Everything the page shows, exactly.
    await pageEquals(page, ended, (v) => v);
    lags.push(await follows(page));
    await page.screenshot({ path: join(SCREENSHOTS, "dashboard-load-end.png") });

    expect(lags.length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...lags)).toBeLessThanOrEqual(WITHIN_MS);
    // A point per snapshot: the chart grew by about one a second over the run.
    expect((chartPoints.at(-1) ?? 0) - (chartPoints[0] ?? 0)).toBeGreaterThanOrEqual(5);
    expect(outside).toEqual([]);
    await page.close();
  }, 90_000);
});
