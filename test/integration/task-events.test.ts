/**
 * Task updates pushed over Server-Sent Events, through the real app (API and
 * worker processes), the real Redis and the real openai client against the
 * project's mock server: every state change in order, the final event equal
 * to GET /task/:id, resuming after Last-Event-ID, and the tenant's
 * completions for dashboards.
 */
import { describe, expect, test } from "bun:test";
import { openSse, type ReceivedEvent, statusesOf } from "../../tools/sse-client";
import { mockAppPerTest } from "../helpers/app-process";
import { json } from "../helpers/services";

const DB = 20;

const harness = mockAppPerTest({ latencyMs: 5 });

async function submit(base: string, text: string, taskType = "general_analysis"): Promise<string> {
  const response = await fetch(`${base}/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text, task_type: taskType, use_cache: false }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

const dataOf = (event: ReceivedEvent) => JSON.parse(event.data) as Record<string, unknown>;

describe("GET /task/:id/events", () => {
  test("streams PENDING, STARTED and SUCCESS in order; the final event is GET /task/:id, and the stream closes", async () => {
    const app = await harness.launch(DB);
    const id = await submit(app.url, "stream my state changes");
    const stream = await openSse(`${app.url}/task/${id}/events`);
    expect(stream.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toStartWith("text/event-stream");
    await stream.ended;
    expect(statusesOf(stream.events)).toEqual(["PENDING", "STARTED", "SUCCESS"]);
    const final = stream.events.at(-1) as ReceivedEvent;
    expect(dataOf(final)).toEqual(await json(await fetch(`${app.url}/task/${id}`)));
    expect(dataOf(stream.events[1] as ReceivedEvent)).toMatchObject({ task_id: id, status: "STARTED", attempt: 1 });
    // Every event has an id, in increasing order, for Last-Event-ID.
    const ids = stream.events.map((e) => e.id);
    expect(ids.every((i) => typeof i === "string" && /^\d+-\d+$/.test(i))).toBe(true);
  });

  test("a retried task shows RETRY with its error between two starts", async () => {
    const app = await harness.launch(DB);
    // Two 500s: the provider retries once within the call (llm/retry.ts), then the attempt fails and the queue retries it.
    harness.mock.setFault({ kind: "500", times: 2, endpoint: "chat", textIncludes: "retry me" });
    const id = await submit(app.url, "please retry me once");
    const stream = await openSse(`${app.url}/task/${id}/events`);
    await stream.ended;
    expect(statusesOf(stream.events)).toEqual(["PENDING", "STARTED", "RETRY", "STARTED", "SUCCESS"]);
    const retry = dataOf(stream.events[2] as ReceivedEvent);
    expect(retry).toMatchObject({ status: "RETRY", attempt: 1, error: { retriable: true } });
    expect(dataOf(stream.events[3] as ReceivedEvent)).toMatchObject({ status: "STARTED", attempt: 2 });
  });

  test("a client that connects after the end gets the whole history at once; after the final id, 204", async () => {
    const app = await harness.launch(DB);
    const id = await submit(app.url, "already over");
    const done = await json<{ status: string }>(await fetch(`${app.url}/task/${id}?wait=10000`));
    expect(done.status).toBe("SUCCESS");
    const late = await openSse(`${app.url}/task/${id}/events`);
    await late.ended;
    expect(statusesOf(late.events)).toEqual(["PENDING", "STARTED", "SUCCESS"]);
    const finalId = late.events.at(-1)?.id as string;
    const again = await fetch(`${app.url}/task/${id}/events`, { headers: { "last-event-id": finalId } });
    expect(again.status).toBe(204);
  });

  test("a client that reconnects with Last-Event-ID gets exactly what it missed", async () => {
    const app = await harness.launch(DB);
    harness.mock.setFault({ kind: "slow", slowMs: 1500, endpoint: "chat", textIncludes: "slow one" });
    const id = await submit(app.url, "a slow one to reconnect to");
    const first = await openSse(`${app.url}/task/${id}/events`);
    await first.waitFor((events) => statusesOf(events).includes("STARTED"), "STARTED");
    first.close();
    const lastSeen = first.events.at(-1)?.id as string;
    const second = await openSse(`${app.url}/task/${id}/events`, { "last-event-id": lastSeen });
    await second.ended;
    expect(statusesOf(second.events)).toEqual(["SUCCESS"]);
    expect([...statusesOf(first.events), ...statusesOf(second.events)]).toEqual(["PENDING", "STARTED", "SUCCESS"]);
  });

  test("an unknown task is a 404 in the error shape, not a stream", async () => {
    const app = await harness.launch(DB);
    const response = await fetch(`${app.url}/task/no-such-task/events`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("TASK_NOT_FOUND");
  });
});

describe("GET /events", () => {
  test("streams the completions that match its filter, and resumes after Last-Event-ID", async () => {
    const app = await harness.launch(DB);
    const base = app.url;
    const dashboard = await openSse(`${base}/events?task_type=sentiment_analysis&status=SUCCESS`);
    const everything = await openSse(`${base}/events`);
    // Give the subscriptions a moment to be registered: /events starts with what happens next.
    await Bun.sleep(200);
    const sentiment = await submit(base, "I love this product", "sentiment_analysis");
    const other = await submit(base, "summarise this text", "summarization");
    await dashboard.waitFor((events) => events.length >= 1, "the sentiment completion");
    await everything.waitFor((events) => events.length >= 2, "both completions");
    expect(dashboard.events.map((e) => dataOf(e).task_id)).toEqual([sentiment]);
    const seen = dataOf(dashboard.events[0] as ReceivedEvent);
    expect(seen).toMatchObject({ status: "SUCCESS", task_type: "sentiment_analysis", queue: "ai_processing" });
    expect((seen.result as { response: string }).response).toStartWith("mock answer");
    expect(new Set(everything.events.map((e) => dataOf(e).task_id))).toEqual(new Set([sentiment, other]));

    // Away for two completions, back with the last id it had: it gets both, in order.
    const lastId = everything.events.at(-1)?.id as string;
    everything.close();
    dashboard.close();
    const missed = [await submit(base, "first while away"), await submit(base, "second while away")];
    for (const id of missed) await fetch(`${base}/task/${id}?wait=10000`);
    const back = await openSse(`${base}/events`, { "last-event-id": lastId });
    await back.waitFor((events) => events.length >= 2, "the two missed completions");
    expect(new Set(back.events.map((e) => dataOf(e).task_id))).toEqual(new Set(missed));
    back.close();
  });

  test("a filter value that is not a list of names is refused with 422 naming the parameter", async () => {
    const app = await harness.launch(DB);
    const response = await fetch(`${app.url}/events?status=PENDING`);
    expect(response.status).toBe(422);
    expect(JSON.stringify(await response.json())).toContain("status");
  });
});

type WsMessage = {
  type: string;
  id?: string;
  event_id?: string;
  code?: string;
  message?: string;
  data?: Record<string, unknown>;
};

/** A plain WebSocket client (Bun's, which may send headers), with every message it got. */
async function openWs(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { headers } as unknown as string[]);
  const messages: WsMessage[] = [];
  ws.onmessage = (event) => messages.push(JSON.parse(String(event.data)) as WsMessage);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (event) => resolve({ code: event.code, reason: event.reason });
  });
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the WebSocket did not open"));
  });
  const until = async (predicate: (all: WsMessage[]) => boolean, what: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(messages)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(messages)}`);
      await Bun.sleep(10);
    }
  };
  return { ws, messages, closed, until, send: (message: unknown) => ws.send(JSON.stringify(message)) };
}

describe("WebSocket /ws", () => {
  test("subscriptions to a task and to completions get the same events as SSE, and end with complete", async () => {
    const app = await harness.launch(DB);
    const client = await openWs(`${app.url}/ws`);
    client.send({ type: "subscribe", id: "all", events: { status: ["SUCCESS"] } });
    await client.until((all) => all.some((m) => m.type === "subscribed" && m.id === "all"), "subscribed");
    await Bun.sleep(200);
    const id = await submit(app.url, "over a websocket");
    client.send({ type: "subscribe", id: "one", task_id: id });
    await client.until((all) => all.some((m) => m.type === "complete" && m.id === "one"), "the task's end");
    const ofTask = client.messages.filter((m) => m.type === "event" && m.id === "one");
    expect(ofTask.map((m) => m.data?.status)).toEqual(["PENDING", "STARTED", "SUCCESS"]);
    expect(ofTask.at(-1)?.data).toEqual(await json(await fetch(`${app.url}/task/${id}`)));
    await client.until((all) => all.some((m) => m.id === "all" && m.type === "event"), "the completion");
    expect(client.messages.find((m) => m.id === "all" && m.type === "event")?.data).toMatchObject({
      task_id: id,
      status: "SUCCESS",
    });

    // After unsubscribing, nothing more arrives on that subscription.
    client.send({ type: "unsubscribe", id: "all" });
    await Bun.sleep(100);
    const before = client.messages.length;
    const next = await submit(app.url, "nobody listens to this one");
    await fetch(`${app.url}/task/${next}?wait=10000`);
    await Bun.sleep(300);
    expect(client.messages.slice(before)).toEqual([]);
    client.ws.close();
  });

  test("a malformed message or an unknown task gets an error message and the connection stays open", async () => {
    const app = await harness.launch(DB);
    const client = await openWs(`${app.url}/ws`);
    client.ws.send("not json");
    client.send({ type: "subscribe", id: "x" });
    client.send({ type: "subscribe", id: "y", task_id: "no-such-task" });
    await client.until((all) => all.filter((m) => m.type === "error").length >= 3, "three errors");
    const errors = client.messages.filter((m) => m.type === "error");
    expect(errors.map((m) => m.code)).toEqual(["INVALID_MESSAGE", "INVALID_MESSAGE", "TASK_NOT_FOUND"]);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.ws.close();
  });

  test("with API keys, the upgrade needs a key, and a tenant never sees another's task", async () => {
    const app = await harness.launch(DB, { API_KEYS: "alpha:alpha-key-123,beta:beta-key-1234" });
    await expect(openWs(`${app.url}/ws`)).rejects.toThrow("did not open");
    const accepted = await fetch(`${app.url}/process`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer alpha-key-123" },
      body: JSON.stringify({ text: "alpha's own task" }),
    });
    const { task_id } = (await accepted.json()) as { task_id: string };
    const beta = await openWs(`${app.url}/ws`, { authorization: "Bearer beta-key-1234" });
    beta.send({ type: "subscribe", id: "peek", task_id });
    await beta.until((all) => all.some((m) => m.type === "error"), "an error");
    expect(beta.messages.find((m) => m.type === "error")?.code).toBe("TASK_NOT_FOUND");
    const alpha = await openWs(`${app.url}/ws`, { authorization: "Bearer alpha-key-123" });
    alpha.send({ type: "subscribe", id: "mine", task_id });
    await alpha.until((all) => all.some((m) => m.type === "complete"), "alpha's task to end");
    beta.ws.close();
    alpha.ws.close();
  });
});
