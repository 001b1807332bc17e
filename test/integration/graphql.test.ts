/**
 * GraphQL at /graphql through the real app (API and worker processes), the
 * real Redis and the real openai client against the project's mock server,
 * with API keys on: the process mutation then a graphql-sse client's
 * taskUpdated subscription from PENDING to the final event (which equals
 * GET /task/:id), the tenant's task list in pages, the same keys, tenants,
 * admin fields and rate limit as REST, documents refused by the limits, and
 * validation errors that name the field.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "graphql-sse";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { json } from "../helpers/services";

const DB = 32;
const RATE_DB = 33;
const KEYS = { acme: `acme-${crypto.randomUUID()}`, globex: `globex-${crypto.randomUUID()}`, ops: crypto.randomUUID() };

let mock: MockOpenAiServer;
let app: AppProcess;

beforeAll(async () => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 5 });
  app = await launchWithMock(mock, DB, {
    API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex},ops:${KEYS.ops}`,
    API_ADMINS: "ops",
    // Tracks each tenant's unfinished tasks, which `tasks` lists first.
    API_MAX_PENDING_TASKS: "100",
  });
}, 60_000);

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  mock.stop();
});

interface GraphqlError {
  message: string;
  path?: string[];
  extensions?: { code?: string; details?: Record<string, unknown> };
}
interface GraphqlBody<T> {
  data?: T | null;
  errors?: GraphqlError[];
}

async function gql<T = Record<string, unknown>>(
  query: string,
  options: { key?: string | undefined; variables?: Record<string, unknown>; base?: string } = {},
): Promise<{ status: number; body: GraphqlBody<T>; response: Response }> {
  const response = await fetch(`${options.base ?? app.url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
    },
    body: JSON.stringify({ query, variables: options.variables ?? {} }),
  });
  return { status: response.status, body: (await response.json()) as GraphqlBody<T>, response };
}

const codesOf = (body: GraphqlBody<unknown>) => (body.errors ?? []).map((e) => e.extensions?.code);

/** A GraphQL answer without its nulls: GraphQL answers null for what REST leaves out. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

const TASK_FIELDS = `task_id status
  result { response task_type model processing_time from_cache similarity cache_tier cache_id
           metadata { tokens_used prompt_tokens completion_tokens provider fallback cost_usd cached_prompt_tokens
                      prompt_version experiment { id variant } } }
  error { code message retriable }`;

const PROCESS = `mutation ($input: ProcessInput!, $key: String) {
  process(input: $input, idempotency_key: $key) { task_id status message replayed }
}`;

async function submit(key: string, input: Record<string, unknown>, idempotencyKey?: string): Promise<string> {
  const { status, body } = await gql<{ process: { task_id: string; status: string } }>(PROCESS, {
    key,
    variables: { input, ...(idempotencyKey ? { key: idempotencyKey } : {}) },
  });
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  expect(body.data?.process.status).toBe("PENDING");
  return body.data?.process.task_id as string;
}

async function restTask(id: string, key: string, waitMs = 0): Promise<Response> {
  return fetch(`${app.url}/task/${id}${waitMs ? `?wait=${waitMs}` : ""}`, {
    headers: { authorization: `Bearer ${key}` },
  });
}

async function finish(id: string, key: string): Promise<Record<string, unknown>> {
  const response = await restTask(id, key, 15_000);
  expect(response.status).toBe(200);
  const task = await json<Record<string, unknown>>(response);
  expect(task.status).toBe("SUCCESS");
  return task;
}

describe("process and taskUpdated", () => {
  test("a graphql-sse subscription gets PENDING, STARTED and SUCCESS in order; the final event is GET /task/:id", async () => {
    mock.setFault({ kind: "slow", slowMs: 800, endpoint: "chat", textIncludes: "subscribe to me" });
    const id = await submit(KEYS.acme, { text: "subscribe to me please", task_type: "sentiment_analysis" });
    const client = createClient({
      url: `${app.url}/graphql`,
      headers: { authorization: `Bearer ${KEYS.acme}` },
      retryAttempts: 0,
    });
    const events: Record<string, unknown>[] = [];
    const deadline = setTimeout(() => client.dispose(), 20_000);
    try {
      for await (const result of client.iterate<{ taskUpdated: Record<string, unknown> }>({
        query: `subscription ($id: ID!) { taskUpdated(id: $id) { event_id final at attempt ${TASK_FIELDS} } }`,
        variables: { id },
      })) {
        expect(result.errors).toBeUndefined();
        events.push(result.data?.taskUpdated as Record<string, unknown>);
      }
    } finally {
      clearTimeout(deadline);
      client.dispose();
      mock.setFault({ kind: "none" });
    }
    expect(events.map((e) => e.status)).toEqual(["PENDING", "STARTED", "SUCCESS"]);
    expect(events.map((e) => e.final)).toEqual([false, false, true]);
    expect(events[1]).toMatchObject({ task_id: id, attempt: 1 });
    // Event ids increase: each is a resume point.
    expect(events[0]?.event_id).toBe("0-1");
    expect(String(events[2]?.event_id) > String(events[1]?.event_id)).toBe(true);

    const rest = await json<Record<string, unknown>>(await restTask(id, KEYS.acme));
    const { event_id, final, at, attempt, ...last } = events[2] as Record<string, unknown>;
    expect(withoutNulls(last)).toEqual(rest);
    expect((rest.result as { response: string }).response).toStartWith("mock answer");

    const { body } = await gql<{ task: unknown }>(`query ($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`, {
      key: KEYS.acme,
      variables: { id },
    });
    expect(withoutNulls(body.data?.task)).toEqual(rest);
  });

  test("resuming after the final event completes at once; an unknown task is TASK_NOT_FOUND", async () => {
    const id = await submit(KEYS.acme, { text: "over before anyone listens" });
    await finish(id, KEYS.acme);
    const client = createClient({
      url: `${app.url}/graphql`,
      headers: { authorization: `Bearer ${KEYS.acme}` },
      retryAttempts: 0,
    });
    try {
      const all: string[] = [];
      for await (const result of client.iterate<{ taskUpdated: { event_id: string; status: string } }>({
        query: `subscription ($id: ID!) { taskUpdated(id: $id) { event_id status } }`,
        variables: { id },
      })) {
        all.push(result.data?.taskUpdated.event_id as string);
      }
      expect(all).toHaveLength(3);
      const resumed: unknown[] = [];
      for await (const result of client.iterate({
        query: `subscription ($id: ID!, $after: String) { taskUpdated(id: $id, after: $after) { status } }`,
        variables: { id, after: all[1] },
      })) {
        resumed.push(result.data);
      }
      expect(resumed).toEqual([{ taskUpdated: { status: "SUCCESS" } }]);
      const afterEnd: unknown[] = [];
      for await (const result of client.iterate({
        query: `subscription ($id: ID!, $after: String) { taskUpdated(id: $id, after: $after) { status } }`,
        variables: { id, after: all[2] },
      })) {
        afterEnd.push(result);
      }
      expect(afterEnd).toEqual([]);
    } finally {
      client.dispose();
    }
    const unknown = await gql(`subscription { taskUpdated(id: "no-such-task") { status } }`, { key: KEYS.acme });
    expect(codesOf(unknown.body)).toEqual(["TASK_NOT_FOUND"]);
  });

  test("process: the same validation, defaults and idempotency as POST /process, errors naming the field", async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ text: "" }, "VALIDATION_FAILED", "text"],
      [{ text: "x".repeat(10_001) }, "VALIDATION_FAILED", "text"],
      [{ text: "hot", temperature: 2.5 }, "VALIDATION_FAILED", "temperature"],
      [{ text: "long", max_tokens: 0 }, "VALIDATION_FAILED", "max_tokens"],
      [{ text: "typed", task_type: "Not-A-Type" }, "VALIDATION_FAILED", "task_type"],
      [{ text: "typed", task_type: "no_such_type" }, "UNKNOWN_TASK_TYPE", "task_type"],
    ];
    for (const [input, code, field] of cases) {
      const { status, body } = await gql(PROCESS, { key: KEYS.acme, variables: { input } });
      expect(status, JSON.stringify(input).slice(0, 60)).toBe(200);
      expect(body.data).toBeNull();
      expect(codesOf(body)).toEqual([code]);
      expect(body.errors?.[0]?.extensions?.details?.field).toBe(field);
      expect(body.errors?.[0]?.message).toStartWith(`${field}: `);
    }
    // A field of the wrong GraphQL type is refused before any resolver, naming it too.
    const typed = await gql(PROCESS, { key: KEYS.acme, variables: { input: { text: "t", temperature: "hot" } } });
    expect(JSON.stringify(typed.body.errors)).toContain("temperature");

    // Idempotency: the key's first use creates the task; a retry through GraphQL or REST gets the same one.
    const idem = `idem-${crypto.randomUUID()}`;
    const input = { text: "only once, whichever API retries", task_type: "summarization" };
    const first = await submit(KEYS.acme, input, idem);
    const retry = await gql<{ process: { task_id: string; replayed: boolean } }>(PROCESS, {
      key: KEYS.acme,
      variables: { input, key: idem },
    });
    expect(retry.body.data?.process).toMatchObject({ task_id: first, replayed: true });
    const rest = await fetch(`${app.url}/process`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${KEYS.acme}`,
        "content-type": "application/json",
        "idempotency-key": idem,
      },
      body: JSON.stringify(input),
    });
    expect(rest.status).toBe(202);
    expect((await json<{ task_id: string }>(rest)).task_id).toBe(first);
    const reused = await gql(PROCESS, { key: KEYS.acme, variables: { input: { text: "another body" }, key: idem } });
    expect(codesOf(reused.body)).toEqual(["IDEMPOTENCY_KEY_REUSED"]);
    // The task ran as asked, with the defaults filled in (LLM_MODEL: no model was given).
    const done = await finish(first, KEYS.acme);
    expect(done.result).toMatchObject({ task_type: "summarization", model: "mock-model" });
  });
});

describe("tasks", () => {
  test("lists the tenant's tasks, unfinished first, then finished newest first, in pages; never another tenant's", async () => {
    const tenantKey = KEYS.globex;
    const finished: string[] = [];
    for (const text of ["first of globex", "second of globex", "third of globex"]) {
      const id = await submit(tenantKey, { text, use_cache: false });
      await finish(id, tenantKey);
      finished.push(id);
    }
    mock.setFault({ kind: "slow", slowMs: 4000, endpoint: "chat", textIncludes: "globex still running" });
    const running = await submit(tenantKey, { text: "globex still running", use_cache: false });
    const acmeOnly = await submit(KEYS.acme, { text: "acme's, not globex's" });
    try {
      type Page = {
        tasks: {
          edges: { cursor: string; node: { task_id: string; status: string }; finished_at: number | null }[];
          pageInfo: { hasNextPage: boolean; endCursor: string | null };
        };
      };
      const PAGE = `query ($after: String, $status: TaskStatus) {
        tasks(first: 2, after: $after, status: $status) {
          edges { cursor finished_at node { task_id status result { response } } }
          pageInfo { hasNextPage endCursor }
        }
      }`;
      const seen: { task_id: string; status: string }[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const { body } = await gql<Page>(PAGE, { key: tenantKey, variables: after ? { after } : {} });
        expect(body.errors).toBeUndefined();
        const page = body.data?.tasks as Page["tasks"];
        seen.push(...page.edges.map((e) => e.node));
        pages++;
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
        expect(pages).toBeLessThan(10);
      }
      expect(pages).toBe(2);
      expect(seen.map((t) => t.task_id)).toEqual([running, ...[...finished].reverse()]);
      expect(["PENDING", "STARTED"]).toContain(seen[0]?.status as string);
      expect(seen.slice(1).every((t) => t.status === "SUCCESS")).toBe(true);
      expect(seen.map((t) => t.task_id)).not.toContain(acmeOnly);

      const { body } = await gql<Page>(PAGE, { key: tenantKey, variables: { status: "SUCCESS" } });
      expect(body.data?.tasks.edges.map((e) => e.node.task_id)).toEqual(finished.slice(1).reverse());
      expect(body.data?.tasks.edges.every((e) => typeof e.finished_at === "number")).toBe(true);

      const bad = await gql(`{ tasks(first: 500) { pageInfo { hasNextPage } } }`, { key: tenantKey });
      expect(codesOf(bad.body)).toEqual(["VALIDATION_FAILED"]);
      const forged = await gql(`{ tasks(first: 1, after: "bm90LWEtY3Vyc29y") { pageInfo { hasNextPage } } }`, {
        key: tenantKey,
      });
      expect(codesOf(forged.body)).toEqual(["INVALID_CURSOR"]);
    } finally {
      mock.setFault({ kind: "none" });
    }
  });
});

describe("keys, tenants and admins", () => {
  test("no key, or a wrong one: 401 before any GraphQL runs, for POST and GET alike", async () => {
    for (const key of [undefined, "not-a-key"]) {
      const post = await gql(`{ tasks { pageInfo { hasNextPage } } }`, { key });
      expect(post.status).toBe(401);
      expect(post.response.headers.get("www-authenticate")).toContain("Bearer");
      const get = await fetch(`${app.url}/graphql?query=${encodeURIComponent("{ __typename }")}`, {
        headers: key ? { authorization: `Bearer ${key}` } : {},
      });
      expect(get.status).toBe(401);
    }
    const ok = await fetch(`${app.url}/graphql?query=${encodeURIComponent("{ __typename }")}`, {
      headers: { authorization: `Bearer ${KEYS.acme}` },
    });
    expect(await ok.json()).toEqual({ data: { __typename: "Query" } });
  });

  test("another tenant's task is null, and its updates TASK_NOT_FOUND", async () => {
    const id = await submit(KEYS.acme, { text: "acme's own business" });
    const own = await gql<{ task: { task_id: string } | null }>(`query ($id: ID!) { task(id: $id) { task_id } }`, {
      key: KEYS.acme,
      variables: { id },
    });
    expect(own.body.data?.task?.task_id).toBe(id);
    const other = await gql<{ task: unknown }>(`query ($id: ID!) { task(id: $id) { task_id status } }`, {
      key: KEYS.globex,
      variables: { id },
    });
    expect(other.body).toEqual({ data: { task: null } });
    const updates = await gql(`subscription ($id: ID!) { taskUpdated(id: $id) { status } }`, {
      key: KEYS.globex,
      variables: { id },
    });
    expect(codesOf(updates.body)).toEqual(["TASK_NOT_FOUND"]);
  });

  test("metrics and workers answer only an admin key: FORBIDDEN for a tenant's", async () => {
    const QUERY = `{ metrics { total_tasks completed_tasks queues { name waiting } latency_ms { p99 } } workers { count workers { id pid queues } } }`;
    const denied = await gql(QUERY, { key: KEYS.acme });
    expect(denied.body.data).toBeNull();
    expect(codesOf(denied.body)).toEqual(["FORBIDDEN"]);
    expect(denied.body.errors?.[0]?.message).toContain("API_ADMINS");

    const admin = await gql<{
      metrics: { total_tasks: number; queues: { name: string }[] };
      workers: { count: number; workers: { queues: string[] }[] };
    }>(QUERY, { key: KEYS.ops });
    expect(admin.body.errors).toBeUndefined();
    const rest = await json<{ total_tasks: number }>(
      await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${KEYS.ops}` } }),
    );
    expect(admin.body.data?.metrics.total_tasks).toBeGreaterThan(0);
    expect(admin.body.data?.metrics.total_tasks).toBeLessThanOrEqual(rest.total_tasks);
    expect(admin.body.data?.metrics.queues.map((q) => q.name)).toContain("ai_processing");
    expect(admin.body.data?.workers.count).toBeGreaterThanOrEqual(1);
    expect(admin.body.data?.workers.workers[0]?.queues.length).toBeGreaterThan(0);
  });

  test("the per-client rate limit counts GraphQL requests as it counts REST ones", async () => {
    const limited = await launchWithMock(mock, RATE_DB, {
      API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}`,
      API_RATE_LIMIT: "3/60s",
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await gql(`{ __typename }`, { key: KEYS.acme, base: limited.url })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect((await gql(`{ __typename }`, { key: KEYS.globex, base: limited.url })).status).toBe(200);
    } finally {
      expect(await limited.stop()).toBe(0);
    }
  });
});

describe("limits on a document", () => {
  const FULL_TASKS = `tasks(first: 100) { edges { cursor task_type queue accepted_at finished_at node { ${TASK_FIELDS} } } pageInfo { hasNextPage endCursor } }`;
  const EVERYTHING = `{
    task(id: "x") { ${TASK_FIELDS} }
    ${FULL_TASKS}
    metrics { total_tasks active_tasks started_tasks completed_tasks failed_tasks retried_tasks failure_rate
      tasks_per_second cache_hit_rate avg_processing_time uptime latency_ms { p50 p95 p99 max count }
      processing_ms { p50 p95 p99 } queues { name waiting active delayed failed accepted }
      cache { hits misses hit_rate avg_similarity embedding_calls estimated_cost_saved_usd }
      llm { calls errors avg_ms p95_ms prompt_tokens completion_tokens }
      kafka { events_consumed events_enqueued dead_lettered total_lag } }
    workers { count workers { id host pid queues concurrency active_jobs processed failed rss_mb started_at last_seen }
      supervisor { recycled restarted } }
  }`;

  test("every field of every root field at once is accepted, and so is the standard introspection query", async () => {
    const everything = await gql(EVERYTHING, { key: KEYS.ops });
    expect(everything.body.errors).toBeUndefined();
    const { getIntrospectionQuery } = await import("graphql");
    const introspection = await gql<{ __schema: { types: { name: string }[] } }>(getIntrospectionQuery(), {
      key: KEYS.acme,
    });
    expect(introspection.body.errors).toBeUndefined();
    expect(introspection.body.data?.__schema.types.map((t) => t.name)).toContain("TaskEvent");
  });

  test("too deep, too many aliases, too costly or too long: refused before running, QUERY_TOO_COMPLEX", async () => {
    let deep = "name";
    for (let i = 0; i < 9; i++) deep = `fields { type { ${deep} } }`;
    // __typename is free (Armor's allow list); a field is not.
    const aliases = Array.from({ length: 11 }, (_, i) => `a${i}: task(id: "t${i}") { task_id }`).join(" ");
    const costly = `{ a: ${FULL_TASKS} b: ${FULL_TASKS} }`;
    const long = `{ ${Array.from({ length: 1000 }, () => "__typename").join(" ")} }`;
    const refused: [string, string, RegExp][] = [
      ["depth", `{ __type(name: "Task") { ${deep} } }`, /depth limit of 15/i],
      ["aliases", `{ ${aliases} }`, /aliases limit of 10/i],
      ["cost", costly, /cost limit of 30000/i],
      ["tokens", long, /token limit of 1000/i],
    ];
    for (const [what, query, message] of refused) {
      const { body } = await gql(query, { key: KEYS.ops });
      expect(body.data, what).toBeUndefined();
      expect(codesOf(body), what).toEqual(["QUERY_TOO_COMPLEX"]);
      expect(body.errors?.[0]?.message, what).toMatch(message);
      expect(body.errors?.[0]?.message, what).not.toContain("Syntax Error");
    }
  });
});
