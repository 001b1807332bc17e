/**
 * The operator console's Tasks, Cache and Kafka sections (issue 16) in a real
 * headless Chromium against the real app (every role, on Kafka topics of its
 * own), Redis and Kafka, with the LLM behind the mock server so that some
 * tasks fail on purpose. What the page shows is read from its DOM and
 * compared with GET /tasks, GET /task/:id and GET /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Kafka } from "kafkajs";
import type { Browser, Page } from "puppeteer-core";
import type { AppProcess } from "../helpers/app-process";
import { openConsole, screenshotSection } from "../helpers/browser";
import { type ConsoleApp, FAIL_TEXT as FAIL, startConsoleApp } from "../helpers/console-app";
import { waitFor } from "../helpers/services";

const DB = 45;
const ADMIN_KEY = "sections-admin-key-123";
const TENANT_KEY = "sections-tenant-key-456";

let setup: ConsoleApp;
let app: AppProcess;
let browser: Browser;
let kafka: Kafka;
let topic: string;
let prefix: string;

beforeAll(async () => {
  // Every role on topics of its own; a 400 is not retried: the tasks whose text asks for it fail at their first attempt.
  setup = await startConsoleApp({ name: "dash-sections", db: DB, keys: { admin: ADMIN_KEY, tenant: TENANT_KEY } });
  ({ app, browser, kafka, topic, prefix } = setup);
}, 60_000);

afterAll(async () => {
  if (setup) expect(await setup.stop()).toBe(0);
});

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

async function submit(key: string, text: string, options: { use_cache?: boolean } = {}): Promise<string> {
  const response = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth(key) },
    // Temperature 0: answers above CACHE_MAX_TEMPERATURE bypass the cache.
    body: JSON.stringify({ text, task_type: "summarization", use_cache: options.use_cache ?? false, temperature: 0 }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

interface TaskView {
  status: string;
  result?: { response: string };
  error?: { code: string };
}

async function ended(key: string, id: string): Promise<TaskView> {
  const response = await fetch(`${app.url}/task/${id}?wait=30000`, { headers: auth(key) });
  const task = (await response.json()) as TaskView;
  expect(["SUCCESS", "FAILURE"]).toContain(task.status);
  return task;
}

async function metrics(): Promise<{
  cache: Record<string, number> & { index?: { name: string; docs: number; state: string } };
  kafka: Record<string, number>;
  llm_costs: {
    total_usd: number;
    by: {
      provider: string;
      model: string;
      task_type: string;
      tenant: string;
      calls: number;
      prompt_tokens: number;
      completion_tokens: number;
    }[];
  };
}> {
  const response = await fetch(`${app.url}/metrics`, { headers: auth(ADMIN_KEY) });
  return (await response.json()) as Awaited<ReturnType<typeof metrics>>;
}

const rowIds = (page: Page) =>
  page.$$eval("#task-table tbody tr", (rows) => rows.map((row) => (row as HTMLElement).dataset.taskId as string));

const domText = (page: Page, selector: string) => page.$eval(selector, (node) => node.textContent ?? "");

/** Waits until every figure read from the page equals /metrics' (both read again until they agree). */
async function agree(page: Page, pairs: Record<string, (m: Awaited<ReturnType<typeof metrics>>) => number>) {
  let last: unknown;
  await waitFor(
    async () => {
      const api = await metrics();
      const shown: Record<string, number> = {};
      const wanted: Record<string, number> = {};
      for (const [name, pick] of Object.entries(pairs)) {
        shown[name] = Number(await domText(page, `[data-metric="${name}"]`));
        wanted[name] = pick(api);
      }
      last = { shown, wanted };
      return JSON.stringify(shown) === JSON.stringify(wanted);
    },
    `the page to show /metrics' figures (last: ${JSON.stringify(last)})`,
    5000,
    100,
  ).catch((error) => {
    throw new Error(`${error}: ${JSON.stringify(last)}`);
  });
}

describe("operator console: tasks, cache, kafka", () => {
  test("the Tasks section lists the posted tasks live, filters by status, and opens a task's detail by id", async () => {
    const before = [await submit(ADMIN_KEY, "the parcel arrived on a tuesday (#t1)")];
    await ended(ADMIN_KEY, before[0] as string);
    const { page, outside } = await openConsole(browser, app.url, ADMIN_KEY);
    await page.waitForSelector('#tasks[data-loaded="true"]');
    expect(await rowIds(page)).toEqual(before);

    // Posted while the page is open: they arrive over GET /events, newest first, without a reload.
    const ok = [];
    for (let i = 2; i <= 5; i++) ok.push(await submit(ADMIN_KEY, `the parcel arrived on a tuesday (#t${i})`));
    const failing = [await submit(ADMIN_KEY, `${FAIL} (#f1)`), await submit(ADMIN_KEY, `${FAIL} (#f2)`)];
    const views = new Map<string, TaskView>();
    for (const id of [...ok, ...failing]) views.set(id, await ended(ADMIN_KEY, id));
    for (const id of failing) expect(views.get(id)?.status).toBe("FAILURE");
    const all = [...before, ...ok, ...failing];
    await page.waitForFunction(
      (ids) => {
        const shown = [...document.querySelectorAll("#task-table tbody tr")].map(
          (r) => (r as HTMLElement).dataset.taskId,
        );
        return ids.every((id: string) => shown.includes(id)) && shown.length === ids.length;
      },
      { timeout: 5000 },
      all,
    );
    // The list is GET /tasks's, in its order.
    const listed = (await (await fetch(`${app.url}/tasks`, { headers: auth(ADMIN_KEY) })).json()) as {
      tasks: { task_id: string }[];
    };
    expect(listed.tasks.map((task) => task.task_id).sort()).toEqual([...all].sort());

    await page.select("#task-filters select[name=status]", "FAILURE");
    await page.waitForFunction(
      (ids) => {
        const rows = [...document.querySelectorAll("#task-table tbody tr")] as HTMLElement[];
        return (
          rows.length === ids.length &&
          rows.every((r) => r.dataset.status === "FAILURE" && ids.includes(r.dataset.taskId as string))
        );
      },
      { timeout: 5000 },
      failing,
    );

    // Search by id: the detail shows the task's own result, and a failed task's error and text.
    const wanted = ok[1] as string;
    await page.type("#task-search", wanted);
    await page.click("#task-search-button");
    await page.waitForSelector(`#task-detail[data-task-id="${wanted}"]`, { timeout: 5000 });
    expect(await domText(page, "#detail-status")).toBe("SUCCESS");
    expect(await domText(page, "#detail-outcome")).toBe(views.get(wanted)?.result?.response as string);
    expect(await domText(page, '#detail-fields dd[data-field="attempts"]')).toBe("1");
    expect(await domText(page, '#detail-fields dd[data-field="cache"]')).toBe("miss (LLM call)");
    expect(await page.$("#task-detail .actions")).not.toBeNull();

    await page.click(`#task-table tbody tr[data-task-id="${failing[0]}"]`);
    await page.waitForSelector(`#task-detail[data-task-id="${failing[0]}"]`, { timeout: 5000 });
    expect(await domText(page, "#detail-outcome")).toStartWith(views.get(failing[0] as string)?.error?.code as string);
    // A failed job's record is kept, and with it the text.
    expect(await domText(page, "#detail-input")).toBe(`${FAIL} (#f1)`);
    await screenshotSection(page, "tasks");
    expect(outside).toEqual([]);
    await page.close();
  }, 60_000);

  test("a tenant's key lists only its tenant's tasks, and another tenant's list is refused 403", async () => {
    const mine = [await submit(TENANT_KEY, "a tenant's own text (#w1)"), await submit(TENANT_KEY, "another (#w2)")];
    for (const id of mine) await ended(TENANT_KEY, id);
    const { page } = await openConsole(browser, app.url, TENANT_KEY);
    await page.waitForSelector('#tasks[data-loaded="true"]');
    await page.waitForFunction(
      (count) => document.querySelectorAll("#task-table tbody tr").length === count,
      { timeout: 5000 },
      mine.length,
    );
    expect((await rowIds(page)).sort()).toEqual([...mine].sort());
    const tenants = await page.$$eval("#task-table tbody tr td:nth-child(5)", (cells) =>
      cells.map((c) => c.textContent),
    );
    expect(tenants).toEqual(["web", "web"]);

    // A cursor the list did not give is refused, naming the parameter.
    const invented = await fetch(`${app.url}/tasks?cursor=0`, { headers: auth(TENANT_KEY) });
    expect(invented.status).toBe(422);
    expect(((await invented.json()) as { error: { details: unknown } }).error.details).toEqual({ field: "cursor" });
    const refused = await fetch(`${app.url}/tasks?tenant=ops`, { headers: auth(TENANT_KEY) });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("FORBIDDEN");
    // The admin's task is not found through a tenant's key either.
    const adminTask = await submit(ADMIN_KEY, "an admin's text (#a1)");
    expect((await fetch(`${app.url}/tasks/${adminTask}`, { headers: auth(TENANT_KEY) })).status).toBe(404);
    await page.close();
  }, 60_000);

  test("the Cache section's hit counts equal /metrics' after a run with repeated texts", async () => {
    const texts = ["what is the capital of france", "summarise the quarterly report", "how do I reset my password"];
    // A first wave fills the cache; the repeats then hit it.
    for (const text of texts) await ended(ADMIN_KEY, await submit(ADMIN_KEY, text, { use_cache: true }));
    const repeats = [];
    for (let round = 0; round < 3; round++) {
      for (const text of texts) repeats.push(await submit(ADMIN_KEY, text, { use_cache: true }));
    }
    for (const id of repeats) await ended(ADMIN_KEY, id);
    // The workers flush their counters about once a second: the repeats are all counted first.
    await waitFor(
      async () => (await metrics()).cache.hits === repeats.length,
      "the repeats to be counted as hits",
      10_000,
      100,
    );
    const { page } = await openConsole(browser, app.url, ADMIN_KEY);
    await agree(page, {
      "cache-hits": (m) => m.cache.hits as number,
      "cache-misses": (m) => m.cache.misses as number,
      "cache-exact": (m) => m.cache.exact_hits as number,
      "cache-semantic": (m) => m.cache.semantic_hits as number,
      "cache-single-flight": (m) => m.cache.single_flight_hits as number,
      "index-docs": (m) => m.cache.index?.docs as number,
    });
    const api = await metrics();
    expect(api.cache.hits).toBe(repeats.length);
    expect(await domText(page, '[data-metric="cache-hits"]')).toBe(String(repeats.length));
    expect(await domText(page, '[data-metric="index-name"]')).toBe(api.cache.index?.name as string);
    // Database 45: the Query Engine indexes database 0 only, so the index is reported unavailable (exact tier only).
    expect(api.cache.index?.state).toBe("unavailable");
    expect(await domText(page, '[data-metric="index-state"]')).toBe("unavailable");
    // LLM spend: a row per provider, model, task type and tenant, each with /metrics' calls and tokens.
    const spend = api.llm_costs.by.filter((r) => r.task_type === "summarization" && r.tenant === "ops");
    expect(spend.length).toBeGreaterThan(0);
    const keyOf = (r: (typeof spend)[number]) => [r.provider, r.model, r.task_type, r.tenant].join("|");
    await agree(
      page,
      Object.fromEntries(
        spend.flatMap((r) => [
          [
            `llm-calls:${keyOf(r)}`,
            (m: Awaited<ReturnType<typeof metrics>>) => m.llm_costs.by.find((x) => keyOf(x) === keyOf(r))?.calls ?? -1,
          ],
          [
            `llm-tokens:${keyOf(r)}`,
            (m: Awaited<ReturnType<typeof metrics>>) => {
              const row = m.llm_costs.by.find((x) => keyOf(x) === keyOf(r));
              return row ? row.prompt_tokens + row.completion_tokens : -1;
            },
          ],
        ]),
      ),
    );
    expect(await domText(page, '[data-metric="llm-total-usd"]')).toMatch(/^\$/);
    await screenshotSection(page, "cache");
    await page.close();
  }, 60_000);

  test("the Kafka section shows /metrics' consumed counts after events on its topic, and a malformed event's dead letter with its reason", async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const events = Array.from({ length: 20 }, (_, i) => ({
      key: `user-${i % 4}`,
      value: JSON.stringify({
        event_id: `${prefix}-e${i}`,
        text: `an event to summarise (#e${i})`,
        task_type: "summarization",
      }),
    }));
    await producer.send({ topic, messages: [...events, { key: "user-x", value: "this is not json {" }] });
    await producer.disconnect();
    await waitFor(
      async () => {
        const { kafka: k } = await metrics();
        return k.events_consumed === 21 && k.dead_lettered === 1;
      },
      "the consumer to take the 21 events",
      30_000,
      200,
    );
    const { page } = await openConsole(browser, app.url, ADMIN_KEY);
    await agree(page, {
      "kafka-consumed": (m) => m.kafka.events_consumed as number,
      "kafka-enqueued": (m) => m.kafka.events_enqueued as number,
      "kafka-dead-lettered": (m) => m.kafka.dead_lettered as number,
    });
    expect(await domText(page, '[data-metric="kafka-consumed"]')).toBe("21");
    await page.waitForSelector("#dead-letters tbody tr", { timeout: 5000 });
    const letters = await page.$$eval("#dead-letters tbody tr", (rows) =>
      rows.map((row) => ({
        reason: row.querySelector("[data-reason]")?.textContent,
        from: row.children[2]?.textContent,
      })),
    );
    expect(letters.length).toBe(1);
    expect(letters[0]?.reason).toBe("not_json");
    expect(letters[0]?.from).toContain(topic);
    // Each partition the consumer holds has its row.
    await page.waitForFunction(() => document.querySelectorAll("#kafka-partitions tbody tr").length === 2, {
      timeout: 10_000,
    });
    await screenshotSection(page, "kafka");
    await page.close();
  }, 60_000);
});
