/**
 * The operator console (/dashboard, issue 16's first step) in a real headless
 * Chromium against the real app and Redis: the page asks for a key, opens its
 * two streams with a stream token, and the numbers it shows are read from
 * its DOM and compared with the API's. Screenshots of its sections: docs/screenshots/dashboard-*.png
 * (Tasks, Cache and Kafka: dashboard-sections.test.ts); others in .artifacts/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { labelOf } from "../../src/api/dashboard/logic";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { launchBrowser, openConsole as openConsoleAt, SCREENSHOTS, screenshotSection } from "../helpers/browser";
import { waitFor } from "../helpers/services";

const DB = 44;
const ADMIN_KEY = "dash-admin-key-123";
const TENANT_KEY = "dash-tenant-key-456";

let mock: MockOpenAiServer;
let app: AppProcess;
let browser: Browser;

beforeAll(async () => {
  mock = createMockOpenAiServer({ port: 0 });
  // The simulated provider labels sentiment from a lexicon, so positive and negative texts get those labels.
  app = await launchWithMock(mock, DB, {
    LLM_PROVIDER: "simulated",
    API_KEYS: `ops:${ADMIN_KEY},web:${TENANT_KEY}`,
    API_ADMINS: "ops",
  });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  if (app) expect(await app.stop()).toBe(0);
  await mock?.stop();
});

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

async function submit(text: string, taskType: string): Promise<string> {
  const response = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json", ...admin },
    body: JSON.stringify({ text, task_type: taskType, use_cache: false }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

async function apiCompleted(): Promise<number> {
  const response = await fetch(`${app.url}/metrics`, { headers: admin });
  return ((await response.json()) as { completed_tasks: number }).completed_tasks;
}

const domNumber = async (page: Page, name: string) =>
  Number(await page.$eval(`[data-metric="${name}"]`, (node) => node.textContent));

async function openConsole(key: string): Promise<Page> {
  const { page, outside } = await openConsoleAt(browser, app.url, key, {
    loginScreenshot: join(SCREENSHOTS, "dashboard-login.png"),
  });
  expect(outside).toEqual([]);
  return page;
}

describe("operator console", () => {
  test("the page and its assets answer without a key, and show nothing until one is given", async () => {
    for (const path of ["/dashboard", "/dashboard/app.js", "/dashboard/logic.js", "/dashboard/style.css"]) {
      expect((await fetch(`${app.url}${path}`)).status).toBe(200);
    }
    // The data does need one: the streams and the metrics they carry.
    expect((await fetch(`${app.url}/metrics/stream`)).status).toBe(401);
    const tenantToken = await fetch(`${app.url}/auth/stream-token`, {
      headers: { authorization: `Bearer ${TENANT_KEY}` },
    });
    const { token } = (await tenantToken.json()) as { token: string };
    expect((await fetch(`${app.url}/metrics/stream?access_token=${encodeURIComponent(token)}`)).status).toBe(403);
  });

  test("with 300 tasks flowing, the overview follows /metrics within 2 s and live sentiment counts the results' labels", async () => {
    const page = await openConsole(ADMIN_KEY);
    await page.waitForFunction(`document.querySelector('[data-metric="completed"]').textContent !== "–"`);

    const texts = [
      "I love this, it is great and fast",
      "terrible, awful and slow, I hate it",
      "the parcel arrived on a tuesday",
    ];
    const submissions: Promise<{ id: string; type: string }>[] = [];
    for (let i = 0; i < 300; i++) {
      const type = i % 3 === 0 ? "sentiment_analysis" : "summarization";
      const text = `${texts[Math.floor(i / 3) % texts.length]} (#${i})`;
      submissions.push(submit(text, type).then((id) => ({ id, type })));
      // A steady flow rather than one burst, so the page is checked while tasks are running.
      if (i % 30 === 29) {
        await Bun.sleep(150);
        const api = await apiCompleted();
        await page.waitForFunction(
          (at) => Number(document.querySelector('[data-metric="completed"]')?.textContent) >= at,
          { timeout: 2000 },
          api,
        );
      }
    }
    const tasks = await Promise.all(submissions);
    await page.screenshot({ path: join(SCREENSHOTS, "dashboard-flowing.png") });

    const sentimentIds = tasks.filter((task) => task.type === "sentiment_analysis").map((task) => task.id);
    const expected = { positive: 0, neutral: 0, negative: 0, unlabelled: 0 };
    for (const id of sentimentIds) {
      const response = await fetch(`${app.url}/task/${id}?wait=30000`, { headers: admin });
      const task = (await response.json()) as { status: string; result?: unknown };
      expect(task.status).toBe("SUCCESS");
      expected[labelOf(task.result) ?? "unlabelled"]++;
    }
    expect(expected.positive).toBeGreaterThan(0);
    expect(expected.negative).toBeGreaterThan(0);
    await waitFor(async () => (await apiCompleted()) === 300, "every task to be counted", 30_000, 100);

    // All done: the page shows exactly /metrics's count within 2 s.
    const started = Date.now();
    await page.waitForFunction(`Number(document.querySelector('[data-metric="completed"]').textContent) === 300`, {
      timeout: 2000,
    });
    expect(Date.now() - started).toBeLessThanOrEqual(2000);
    expect(await domNumber(page, "completed")).toBe(await apiCompleted());

    await page.waitForFunction(
      (count) =>
        ["positive", "neutral", "negative", "unlabelled"]
          .map((label) => Number(document.querySelector(`[data-metric="sentiment-${label}"]`)?.textContent))
          .reduce((a, b) => a + b, 0) === count,
      { timeout: 5000 },
      sentimentIds.length,
    );
    const shown = {
      positive: await domNumber(page, "sentiment-positive"),
      neutral: await domNumber(page, "sentiment-neutral"),
      negative: await domNumber(page, "sentiment-negative"),
      unlabelled: await domNumber(page, "sentiment-unlabelled"),
    };
    expect(shown).toEqual(expected);
    // The latest list names real sentiment tasks with their labels.
    const latest = await page.$$eval("#sentiment-latest li", (items) =>
      items.map((item) => ({ id: (item as HTMLElement).dataset.taskId, label: (item as HTMLElement).dataset.label })),
    );
    expect(latest.length).toBe(20);
    for (const item of latest) expect(sentimentIds).toContain(item.id as string);
    // The accepted total is its own counter, read in the same snapshot: it too reaches 300 within 2 s.
    await page.waitForFunction(`Number(document.querySelector('[data-metric="accepted"]').textContent) === 300`, {
      timeout: 2000,
    });
    await screenshotSection(page, "overview");
    await screenshotSection(page, "sentiment");
    await page.close();
  }, 120_000);

  test("the queues section shows /metrics's depths within 2 s, and the workers table exactly GET /workers's pids", async () => {
    const page = await openConsole(ADMIN_KEY);
    type Depths = Record<string, Record<string, number>>;
    const apiDepths = async (): Promise<Depths> => {
      const response = await fetch(`${app.url}/metrics`, { headers: admin });
      const { queues } = (await response.json()) as { queues: Depths };
      // In the page's order: by name.
      return Object.fromEntries(
        Object.entries(queues)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([name, d]) => [name, { waiting: d.waiting, active: d.active, delayed: d.delayed, failed: d.failed }]),
      ) as Depths;
    };
    const pageDepths = () =>
      page.$$eval("#queue-table tbody tr", (rows) =>
        Object.fromEntries(
          rows.map((row) => {
            const name = (row as HTMLElement).dataset.queue as string;
            const read = (state: string) =>
              Number(row.querySelector(`[data-metric="queue:${name}:${state}"]`)?.textContent);
            return [
              name,
              { waiting: read("waiting"), active: read("active"), delayed: read("delayed"), failed: read("failed") },
            ];
          }),
        ),
      );
    // Within 2 s of a /metrics read, the page shows the same depths for the same queues (tasks flowing meanwhile).
    const agreeWithin2s = async () => {
      const started = Date.now();
      let last: unknown;
      while (Date.now() - started <= 2000) {
        const [api, shown] = await Promise.all([apiDepths(), pageDepths()]);
        if (Object.keys(api).length > 0 && JSON.stringify(shown) === JSON.stringify(api)) return;
        last = { api, shown };
        await Bun.sleep(50);
      }
      throw new Error(`queue depths did not agree within 2 s: ${JSON.stringify(last)}`);
    };
    await agreeWithin2s();
    const submissions: Promise<string>[] = [];
    for (let i = 0; i < 120; i++) {
      submissions.push(submit(`the parcel arrived on a tuesday (#q${i})`, "summarization"));
      if (i % 40 === 39) await agreeWithin2s();
    }
    await Promise.all(submissions);
    await agreeWithin2s();
    // The sparkline of every queue is drawn from successive snapshots (one a second): a point per snapshot.
    const queueCount = Object.keys(await apiDepths()).length;
    await page.waitForFunction(
      (count) => {
        const lines = [...document.querySelectorAll("#queue-table svg.spark polyline")];
        return (
          lines.length === count * 4 &&
          lines.every((line) => (line.getAttribute("points") ?? "").split(" ").length >= 3)
        );
      },
      { timeout: 5000 },
      queueCount,
    );
    await screenshotSection(page, "queues");

    // Workers: the table lists exactly the processes GET /workers lists, none stale while they beat.
    const apiPids = async () => {
      const response = await fetch(`${app.url}/workers`, { headers: admin });
      const { workers } = (await response.json()) as { workers: { pid: number }[] };
      return workers.map((worker) => worker.pid).sort((a, b) => a - b);
    };
    const pids = await apiPids();
    expect(pids.length).toBeGreaterThan(0);
    await page.waitForFunction(
      (expected) =>
        JSON.stringify(
          [...document.querySelectorAll("#worker-table tbody tr")]
            .map((row) => Number((row as HTMLElement).dataset.pid))
            .sort((a, b) => a - b),
        ) === expected,
      { timeout: 2000 },
      JSON.stringify(pids),
    );
    expect(await apiPids()).toEqual(pids);
    expect(await domNumber(page, "workers-count")).toBe(pids.length);
    expect(await domNumber(page, "workers-stale")).toBe(0);
    expect(await page.$$("#worker-table tr[data-stale]")).toEqual([]);
    await screenshotSection(page, "workers");
    await page.close();
  }, 60_000);

  test("a tenant's key sees its live sentiment, and the overview says it needs an admin key", async () => {
    const page = await openConsole(TENANT_KEY);
    await page.waitForSelector("#overview-note:not([hidden])", { timeout: 10_000 });
    await page.screenshot({ path: join(SCREENSHOTS, "dashboard-tenant.png") });
    await page.close();
  });
});
