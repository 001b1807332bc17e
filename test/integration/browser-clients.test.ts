/**
 * The push channels as a browser uses them, in a real headless Chromium: the
 * built-in EventSource and WebSocket, which cannot send an Authorization
 * header, authenticated with a token from GET /auth/stream-token. The page
 * shows what it received; its screenshot is in .artifacts/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "puppeteer-core";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { launchBrowser, SCREENSHOTS } from "../helpers/browser";
import { json } from "../helpers/services";

const DB = 21;
/** The page's code: plain browser JavaScript, not type-checked against Bun's types. */
const BROWSER_SCRIPT = join(import.meta.dir, "fixtures", "browser-clients.js");
const KEY = "browser-key-123";

let mock: MockOpenAiServer;
let app: AppProcess;
let browser: Browser;

beforeAll(async () => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 100 });
  app = await launchWithMock(mock, DB, { API_KEYS: `web:${KEY}` });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  if (app) expect(await app.stop()).toBe(0);
  await mock.stop();
});

const auth = { authorization: `Bearer ${KEY}` };

async function submit(text: string): Promise<string> {
  const response = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify({ text, task_type: "sentiment_analysis", use_cache: false }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

async function streamToken(): Promise<string> {
  const response = await fetch(`${app.url}/auth/stream-token`, { headers: auth });
  expect(response.status).toBe(200);
  expect(response.headers.get("cache-control")).toBe("no-store");
  return ((await response.json()) as { token: string }).token;
}

describe("browser clients", () => {
  test("the browser's EventSource follows a task to its end with a stream token, and the page shows it", async () => {
    const page = await browser.newPage();
    await page.goto(`${app.url}/health`);
    const id = await submit("I love how fast this is");
    const token = await streamToken();
    await page.addScriptTag({ path: BROWSER_SCRIPT });
    const path = `/task/${id}/events?access_token=${encodeURIComponent(token)}`;
    const received = (await page.evaluate(`followTask(${JSON.stringify(path)})`)) as {
      statuses: string[];
      final: unknown;
    };
    await page.screenshot({ path: join(SCREENSHOTS, "eventsource-task.png") });
    expect(received.statuses).toEqual(["PENDING", "STARTED", "SUCCESS"]);
    expect(received.final).toEqual(await json(await fetch(`${app.url}/task/${id}`, { headers: auth })));
    await page.close();
  });

  test("the browser's WebSocket subscribes to completions with a stream token", async () => {
    const page = await browser.newPage();
    await page.goto(`${app.url}/health`);
    const token = await streamToken();
    await page.addScriptTag({ path: BROWSER_SCRIPT });
    await page.evaluate(`watchCompletions(${JSON.stringify(`/ws?access_token=${encodeURIComponent(token)}`)})`);
    await Bun.sleep(200);
    const id = await submit("a completion for the dashboard");
    await page.waitForFunction(`sawCompletion(${JSON.stringify(id)})`, { timeout: 15_000 });
    await page.screenshot({ path: join(SCREENSHOTS, "websocket-completions.png") });
    await page.close();
  });

  test("a bad or missing token is refused with 401; a token never opens POST /process", async () => {
    const token = await streamToken();
    expect((await fetch(`${app.url}/events?access_token=st1.forged.1.sig`)).status).toBe(401);
    expect((await fetch(`${app.url}/events`)).status).toBe(401);
    const post = await fetch(`${app.url}/process?access_token=${encodeURIComponent(token)}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "should not be accepted" }),
    });
    expect(post.status).toBe(401);
  });
});
