/**
 * The operator console's control actions (issue 16 §2) clicked in a real
 * headless Chromium against the real app, Redis and the mock LLM: an admin
 * retries a failed task, which ends SUCCESS, and pauses and resumes a queue,
 * each checked through the API; a tenant's key sees no control and the API
 * refuses its actions.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "puppeteer-core";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { launchBrowser, openConsole, screenshotSection } from "../helpers/browser";
import { waitFor } from "../helpers/services";

const DB = 46;
const ADMIN_KEY = "controls-admin-key-123";
const TENANT_KEY = "controls-tenant-key-456";
const FAIL = "please fail this one";
const QUEUE = "ai_processing";

let mock: MockOpenAiServer;
let app: AppProcess;
let browser: Browser;

beforeAll(async () => {
  mock = createMockOpenAiServer({ port: 0 });
  app = await launchWithMock(mock, DB, {
    API_KEYS: `ops:${ADMIN_KEY},web:${TENANT_KEY}`,
    API_ADMINS: "ops",
    TASK_ROUTES: `summarization=${QUEUE}`,
  });
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (app) expect(await app.stop()).toBe(0);
  await mock?.stop();
});

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

async function submit(key: string, text: string): Promise<string> {
  const response = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth(key) },
    body: JSON.stringify({ text, task_type: "summarization", use_cache: false }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

const statusOf = async (id: string, key = ADMIN_KEY) =>
  ((await (await fetch(`${app.url}/tasks/${id}`, { headers: auth(key) })).json()) as { status?: string }).status;

const until = (id: string, status: string) =>
  waitFor(async () => (await statusOf(id)) === status, `task ${id} to be ${status}`, 20_000, 100);

const control = async () =>
  (await (await fetch(`${app.url}/admin/control`, { headers: auth(ADMIN_KEY) })).json()) as {
    queues: { name: string; paused: boolean; by?: string }[];
  };

/** The action's outcome as the page shows it. */
const outcome = (page: Page) =>
  page.waitForFunction(
    () => {
      const note = document.querySelector("#action-status") as HTMLElement | null;
      return note && !note.hidden ? `${note.dataset.outcome}: ${note.textContent}` : undefined;
    },
    { timeout: 10_000 },
  );

describe("an admin in the console", () => {
  let page: Page;
  beforeAll(async () => {
    ({ page } = await openConsole(browser, app.url, ADMIN_KEY));
    // Destructive actions ask first: the test says yes.
    page.on("dialog", (dialog) => void dialog.accept());
    await page.waitForSelector(`#queue-table tr[data-queue="${QUEUE}"] [data-action="queue-toggle"]`, {
      visible: true,
      timeout: 10_000,
    });
  });
  afterAll(() => page?.close());

  test("retries a failed task from its detail, and it ends SUCCESS", async () => {
    mock.setFault({ kind: "400", textIncludes: FAIL, endpoint: "chat" });
    const id = await submit(TENANT_KEY, `${FAIL}: the report for March`);
    await until(id, "FAILURE");
    mock.setFault({ kind: "none" });
    await page.$eval(
      "#task-search",
      (input, value) => {
        (input as HTMLInputElement).value = value as string;
      },
      id,
    );
    await page.click("#task-search-button");
    await page.waitForSelector(`#task-detail[data-task-id="${id}"] [data-action="retry-task"]:not([hidden])`);
    // Only a failed task offers Retry; Cancel is for waiting ones.
    expect(await page.$eval('[data-action="cancel-task"]', (node) => (node as HTMLElement).hidden)).toBe(true);
    await page.click('[data-action="retry-task"]');
    expect(String(await (await outcome(page)).jsonValue())).toStartWith("ok:");
    await until(id, "SUCCESS");
    // The detail follows the task to its new end.
    await page.waitForFunction(() => document.querySelector("#detail-status")?.textContent === "SUCCESS", {
      timeout: 10_000,
    });
  });

  test("pauses a queue (its tasks wait) and resumes it (they run), checked through the API", async () => {
    const toggle = `#queue-table tr[data-queue="${QUEUE}"] [data-action="queue-toggle"]`;
    await page.click(toggle);
    expect(String(await (await outcome(page)).jsonValue())).toStartWith("ok:");
    expect((await control()).queues.find((q) => q.name === QUEUE)).toMatchObject({ paused: true, by: "ops" });
    // The page learns the state from its stream, and the button turns into Resume.
    await page.waitForFunction(
      (selector) => document.querySelector(selector as string)?.textContent === "Resume",
      { timeout: 5000 },
      toggle,
    );
    await Bun.sleep(1500);
    const held = await submit(TENANT_KEY, "held while the queue is paused");
    await Bun.sleep(1500);
    expect(await statusOf(held)).toBe("PENDING");
    await screenshotSection(page, "queues", "queues-paused");

    await page.click(toggle);
    await page.waitForFunction(
      (selector) => document.querySelector(selector as string)?.textContent === "Pause",
      { timeout: 5000 },
      toggle,
    );
    expect((await control()).queues.find((q) => q.name === QUEUE)?.paused).toBe(false);
    await until(held, "SUCCESS");
  });
});

describe("a tenant in the console", () => {
  test("sees no control, and the API refuses its actions", async () => {
    const { page } = await openConsole(browser, app.url, TENANT_KEY);
    try {
      await page.waitForFunction(() => document.body.dataset.admin === "false", { timeout: 10_000 });
      for (const selector of ["#rate-limit", "#cache-control", "#kafka-toggle", ".actions"]) {
        expect(await page.$eval(selector, (node) => (node as HTMLElement).checkVisibility()), selector).toBe(false);
      }
      const refused = await page.evaluate(
        async (key, queue) =>
          (await fetch(`/admin/queues/${queue}/pause`, { method: "POST", headers: { authorization: `Bearer ${key}` } }))
            .status,
        TENANT_KEY,
        QUEUE,
      );
      expect(refused).toBe(403);
      expect((await control()).queues.every((q) => !q.paused)).toBe(true);
    } finally {
      await page.close();
    }
  });
});
