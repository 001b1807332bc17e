/**
 * Signed webhooks end to end (issue 15 §4): the app as users run it (API and
 * worker roles, the LLM behind the mock OpenAI server, API keys on) posts
 * each task's final result to its callback_url, a real Bun.serve receiver in
 * this test. Signatures are verified here independently: by recomputing the
 * HMAC from the master secret, and with the `standardwebhooks` library.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

const DB = 40;
const MASTER = `master-${crypto.randomUUID()}`;
const KEYS = { acme: `acme-key-${crypto.randomUUID()}`, globex: `globex-key-${crypto.randomUUID()}` };
const MAX_ATTEMPTS = 5;

type Received = { path: string; headers: Record<string, string>; body: string; at: number };
type Attempt = {
  n: number;
  at: string;
  status_code?: number;
  error?: string;
  duration_ms: number;
  state: string;
  next_attempt_at?: string;
};
type Deliveries = {
  task_id: string;
  deliveries: { webhook_id: string; url: string; type: string; state: string; detail?: string; attempts: Attempt[] }[];
};

let mock: MockOpenAiServer;
let app: AppProcess;
let receiver: ReturnType<typeof Bun.serve>;
const received: Received[] = [];
/** Per path, the statuses to answer in turn; the last one repeats. */
const script = new Map<string, number[]>();

const auth = (tenant: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[tenant]}` });
const hook = (path: string) => `http://127.0.0.1:${receiver.port}${path}`;
const at = (path: string) => received.filter((r) => r.path === path);

/** The secret a tenant's webhooks are signed with, computed here from the master secret (not by the app). */
const expectedSecret = (tenant: string) =>
  `whsec_${createHmac("sha256", MASTER).update(`tenant:${tenant}`).digest("base64")}`;

async function submit(tenant: keyof typeof KEYS, callbackUrl: string, text = `webhook ${crypto.randomUUID()}`) {
  const response = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth(tenant) },
    body: JSON.stringify({ text, use_cache: false, callback_url: callbackUrl }),
  });
  expect(response.status).toBe(202);
  return (await json<{ task_id: string }>(response)).task_id;
}

const deliveriesOf = async (taskId: string, tenant: keyof typeof KEYS = "acme") =>
  json<Deliveries>(await fetch(`${app.url}/task/${taskId}/deliveries`, { headers: auth(tenant) }));

async function finalDelivery(taskId: string, states: readonly string[], timeoutMs = 15_000) {
  return waitFor(
    async () => {
      const [delivery] = (await deliveriesOf(taskId)).deliveries;
      return delivery && states.includes(delivery.state) ? delivery : undefined;
    },
    `the webhook of ${taskId} to reach ${states.join(" or ")}`,
    timeoutMs,
    50,
  );
}

beforeAll(async () => {
  receiver = Bun.serve({
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      received.push({ path, headers: Object.fromEntries(request.headers), body: await request.text(), at: Date.now() });
      const statuses = script.get(path) ?? [204];
      const status = (statuses.length > 1 ? statuses.shift() : statuses[0]) as number;
      if (status >= 300 && status < 400) return new Response(null, { status, headers: { location: "/target" } });
      return new Response(status === 204 ? null : "receiver says no", { status });
    },
  });
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  app = await launchWithMock(mock, DB, {
    WEBHOOK_SECRET: MASTER,
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_RETRY_BASE_MS: "100",
    WEBHOOK_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    WEBHOOK_TIMEOUT_MS: "2000",
    API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}`,
    API_ADMINS: "acme",
    JOB_RETRIES: "0",
  });
}, 60_000);

afterAll(async () => {
  const code = await app?.stop();
  if (code !== 0) process.stderr.write(app?.output() ?? "");
  mock?.stop();
  receiver?.stop(true);
  expect(code).toBe(0);
});

describe("signed webhooks", () => {
  test("GET /webhooks/secret gives each tenant the secret derived from WEBHOOK_SECRET", async () => {
    for (const tenant of ["acme", "globex"] as const) {
      const body = await json<{ secret: string; tenant: string }>(
        await fetch(`${app.url}/webhooks/secret`, { headers: auth(tenant) }),
      );
      expect(body).toMatchObject({ secret: expectedSecret(tenant), tenant });
    }
    expect((await fetch(`${app.url}/webhooks/secret`)).status).toBe(401);
  });

  test("a receiver that fails the first 3 attempts gets the result on the 4th, signed; /deliveries lists all 4", async () => {
    script.set("/flaky", [500, 503, 429, 204]);
    const taskId = await submit("acme", hook("/flaky"));
    const delivery = await finalDelivery(taskId, ["delivered", "failed"]);
    expect(delivery.state).toBe("delivered");

    const requests = at("/flaky");
    expect(requests).toHaveLength(4);
    // One webhook-id for every attempt, so the receiver can drop duplicates; a timestamp per attempt.
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`msg_${taskId}`]));
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    const last = requests[3] as Received;
    const secret = expectedSecret("acme");
    const key = Buffer.from(secret.slice("whsec_".length), "base64");
    const signed = `${last.headers["webhook-id"]}.${last.headers["webhook-timestamp"]}.${last.body}`;
    expect(last.headers["webhook-signature"]).toBe(`v1,${createHmac("sha256", key).update(signed).digest("base64")}`);
    expect(Math.abs(Number(last.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(30);
    expect(last.headers["content-type"]).toBe("application/json");
    const payload = new Webhook(secret).verify(last.body, last.headers) as {
      type: string;
      timestamp: string;
      data: unknown;
    };

    // The data is the task exactly as GET /task/:id shows it.
    const task = await json<{ status: string }>(await fetch(`${app.url}/task/${taskId}`, { headers: auth("acme") }));
    expect(task.status).toBe("SUCCESS");
    expect(payload).toEqual({ type: "task.completed", timestamp: expect.any(String), data: task });

    expect(delivery.attempts.map((a) => [a.n, a.status_code, a.state])).toEqual([
      [1, 500, "retrying"],
      [2, 503, "retrying"],
      [3, 429, "retrying"],
      [4, 204, "delivered"],
    ]);
    for (const attempt of delivery.attempts.slice(0, 3)) {
      expect(Date.parse(attempt.next_attempt_at ?? "")).toBeGreaterThan(Date.parse(attempt.at));
    }
    expect(delivery.attempts[3]?.next_attempt_at).toBeUndefined();
    // The attempts reach /metrics (worker processes flush their counters about every second).
    const metrics = await waitFor(
      async () => {
        const body = await json<{ webhooks: { attempts: number; delivered: number; retrying: number } }>(
          await fetch(`${app.url}/metrics`, { headers: auth("acme") }),
        );
        return body.webhooks.delivered >= 1 && body.webhooks.retrying >= 3 ? body.webhooks : undefined;
      },
      "the webhook attempts in /metrics",
      10_000,
      200,
    );
    expect(metrics.attempts).toBeGreaterThanOrEqual(4);
    expect(delivery).toMatchObject({ webhook_id: `msg_${taskId}`, url: hook("/flaky"), type: "task.completed" });
    // Backoff: each wait at least half the doubled base (equal jitter): 50, 100, 200 ms.
    const gaps = requests.slice(1).map((r, i) => r.at - (requests[i] as Received).at);
    for (const [i, gap] of gaps.entries()) expect(gap).toBeGreaterThanOrEqual(50 * 2 ** i - 5);
  });

  test("a task that fails sends task.failed with the error GET /task/:id shows", async () => {
    mock.setFault({ kind: "400", times: 1 });
    const taskId = await submit("acme", hook("/failed"));
    await finalDelivery(taskId, ["delivered"]);
    const [request] = at("/failed");
    const payload = new Webhook(expectedSecret("acme")).verify(request?.body ?? "", request?.headers ?? {});
    const task = await json<{ status: string; error: { code: string } }>(
      await fetch(`${app.url}/task/${taskId}`, { headers: auth("acme") }),
    );
    expect(task.status).toBe("FAILURE");
    expect(payload).toEqual({ type: "task.failed", timestamp: expect.any(String), data: task });
  });

  test("410 Gone stops every further webhook to that URL for the tenant; another tenant's still goes", async () => {
    script.set("/gone", [410]);
    const first = await submit("acme", hook("/gone"));
    const gone = await finalDelivery(first, ["gone", "delivered", "failed"]);
    expect(gone.attempts.map((a) => [a.status_code, a.state])).toEqual([[410, "gone"]]);

    const second = await submit("acme", hook("/gone"));
    const skipped = await finalDelivery(second, ["gone", "delivered", "failed"]);
    expect(skipped).toMatchObject({ state: "gone", attempts: [], detail: expect.stringContaining("410") });
    expect(at("/gone")).toHaveLength(1);

    // 410 was said to acme: globex's webhook to the same URL is still sent (and answered 410 in turn).
    const other = await submit("globex", hook("/gone"));
    await waitFor(() => at("/gone").length === 2, "globex's webhook to reach the receiver");
    expect(at("/gone")[1]?.headers["webhook-id"]).toBe(`msg_${other}`);
  });

  test("a redirect is not followed: each 3xx is a failed attempt, its target never called; then the delivery fails", async () => {
    script.set("/moved", [302]);
    const taskId = await submit("acme", hook("/moved"));
    const delivery = await finalDelivery(taskId, ["failed", "delivered"]);
    expect(delivery.state).toBe("failed");
    expect(delivery.attempts.map((a) => a.status_code)).toEqual(new Array(MAX_ATTEMPTS).fill(302));
    expect(delivery.attempts.at(-1)?.state).toBe("failed");
    expect(at("/moved")).toHaveLength(MAX_ATTEMPTS);
    expect(at("/target")).toHaveLength(0);
  });

  test("a tenant never sees another tenant's deliveries", async () => {
    const taskId = await submit("acme", hook("/private"));
    await finalDelivery(taskId, ["delivered"]);
    const response = await fetch(`${app.url}/task/${taskId}/deliveries`, { headers: auth("globex") });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "TASK_NOT_FOUND" } });
  });

  test("the app's logs carry no secret: neither the master, nor a tenant's, nor a signature", () => {
    const output = app.output();
    expect(output).not.toContain(MASTER);
    expect(output).not.toContain(expectedSecret("acme").slice("whsec_".length));
    for (const request of received) expect(output).not.toContain(request.headers["webhook-signature"] ?? "v1,");
  });
});
