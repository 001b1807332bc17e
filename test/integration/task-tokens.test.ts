/**
 * A task's answer streamed token by token (GET /task/:id/stream), through the
 * real app (API and worker processes, which are separate OS processes), the
 * real Redis and the real openai SDK streaming from the project's mock
 * server: how many events a client gets, how soon after the mock sent the
 * first token, that the tokens join into the stored result, cache hits and
 * unstreamed tasks as one piece, resets on retries, Last-Event-ID, failures.
 */
import { describe, expect, test } from "bun:test";
import { openSse, type ReceivedEvent } from "../../tools/sse-client";
import { mockAppPerTest } from "../helpers/app-process";
import { json } from "../helpers/services";

const DB = 24;

const harness = mockAppPerTest({ latencyMs: 5 });

interface Submit {
  stream?: boolean;
  use_cache?: boolean;
  headers?: Record<string, string>;
}

async function submit(base: string, text: string, options: Submit = {}): Promise<string> {
  const response = await fetch(`${base}/process`, {
    method: "POST",
    headers: { "content-type": "application/json", ...options.headers },
    body: JSON.stringify({ text, stream: options.stream ?? true, use_cache: options.use_cache ?? false }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

const dataOf = (event: ReceivedEvent) => JSON.parse(event.data) as Record<string, unknown>;
const tokensOf = (events: readonly ReceivedEvent[]) => events.filter((e) => e.event === "token");

/** The text a client shows at the end: the tokens after the last reset. */
function shownText(events: readonly ReceivedEvent[]): string {
  let text = "";
  for (const event of events) {
    if (event.event === "reset") text = "";
    else if (event.event === "token") text += (dataOf(event) as { text: string }).text;
  }
  return text;
}

function finalOf(events: readonly ReceivedEvent[]) {
  const last = events.at(-1) as ReceivedEvent;
  expect(last.event).toBe("end");
  return dataOf(last) as { task_id: string; status: string; result?: { response: string; from_cache: boolean } };
}

/** Nearest-rank percentile. */
const percentile = (values: readonly number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * values.length) - 1)] as number;

describe("GET /task/:id/stream", () => {
  test("200 tokens 5 ms apart reach the client as at least 150 events, which join into the stored result", async () => {
    harness.mock.setStream({ tokens: 200, tokenLatencyMs: 5 });
    const app = await harness.launch(DB);
    const id = await submit(app.url, "stream me two hundred tokens");
    const stream = await openSse(`${app.url}/task/${id}/stream`);
    expect(stream.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toStartWith("text/event-stream");
    await stream.ended;
    const tokens = tokensOf(stream.events);
    expect(tokens.length).toBeGreaterThanOrEqual(150);
    const final = finalOf(stream.events);
    // The final event is GET /task/:id, and the text shown is the stored answer.
    expect(final).toEqual(await json(await fetch(`${app.url}/task/${id}`)));
    expect(final.status).toBe("SUCCESS");
    expect(shownText(stream.events)).toBe(final.result?.response as string);
    expect(String(final.result?.response).split(" ").length).toBeGreaterThanOrEqual(200);
    // Events read from the stream have increasing ids, for Last-Event-ID.
    const ids = stream.events.map((e) => e.id as string);
    expect(ids.every((i) => /^\d+-\d+$/.test(i))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);

    // A client that comes after the end gets the same answer at once.
    const late = await openSse(`${app.url}/task/${id}/stream`);
    await late.ended;
    expect(shownText(late.events)).toBe(final.result?.response as string);
    expect(late.events.map((e) => e.id)).toEqual(ids);
  });

  // The 50 ms P99 target is measured by `bun bench stream` (BENCHMARKS.md) on a quiet machine; this test keeps the
  // typical case and catches a stall (a token held until the answer ends) even on a loaded one.
  test("the first token reaches the client within 50 ms of the mock sending it (P50 of 50 tasks, no stall)", async () => {
    harness.mock.setStream({ tokens: 20, tokenLatencyMs: 5 });
    const app = await harness.launch(DB);
    const base = app.url;
    const lags: number[] = [];
    const runOne = async (i: number) => {
      const text = `first token timing ${i} ${crypto.randomUUID()}`;
      const id = await submit(base, text);
      const stream = await openSse(`${base}/task/${id}/stream`);
      await stream.ended;
      const first = tokensOf(stream.events)[0] as ReceivedEvent;
      const sent = harness.mock.streams().find((record) => record.user === text);
      expect(sent).toBeDefined();
      expect(finalOf(stream.events).status).toBe("SUCCESS");
      // Same machine, same process: both are epoch ms from performance.timeOrigin.
      lags.push(performance.timeOrigin + first.at - (sent?.first_token_at as number));
    };
    for (let batch = 0; batch < 5; batch++)
      await Promise.all(Array.from({ length: 10 }, (_, i) => runOne(batch * 10 + i)));
    expect(lags).toHaveLength(50);
    const p50 = percentile(lags, 50);
    const p99 = percentile(lags, 99);
    console.info(`time from the mock's first token to the client: P50 ${p50.toFixed(2)} ms, P99 ${p99.toFixed(2)} ms`);
    expect(Math.min(...lags)).toBeGreaterThan(0);
    expect(p50).toBeLessThanOrEqual(50);
    // A quarter of a second is far beyond scheduling noise: the first token waited on something.
    expect(p99).toBeLessThan(250);
  });

  test("a cache hit streams its answer as one token; a task sent without stream too", async () => {
    // 10 ms apart: tokens that arrive in one read are sent as one event, and this test counts them.
    harness.mock.setStream({ tokens: 40, tokenLatencyMs: 10 });
    const app = await harness.launch(DB);
    const text = "an answer worth caching for streams";
    const first = await submit(app.url, text, { use_cache: true });
    const miss = await openSse(`${app.url}/task/${first}/stream`);
    await miss.ended;
    expect(tokensOf(miss.events).length).toBeGreaterThanOrEqual(20);
    const answer = finalOf(miss.events).result?.response as string;

    const second = await submit(app.url, text, { use_cache: true });
    const hit = await openSse(`${app.url}/task/${second}/stream`);
    await hit.ended;
    const final = finalOf(hit.events);
    expect(final.result?.from_cache).toBe(true);
    expect(tokensOf(hit.events)).toHaveLength(1);
    expect(shownText(hit.events)).toBe(answer);
    expect(final).toEqual(await json(await fetch(`${app.url}/task/${second}`)));

    const plain = await submit(app.url, "not streamed at all", { stream: false });
    const whole = await openSse(`${app.url}/task/${plain}/stream`);
    await whole.ended;
    expect(whole.events.map((e) => e.event)).toEqual(["token", "end"]);
    expect(shownText(whole.events)).toBe(finalOf(whole.events).result?.response as string);
    expect(harness.mock.counters().chat_streams).toBe(1);
  });

  test("a retried answer shows a reset before it starts over: inside the call, then as a new attempt", async () => {
    harness.mock.setStream({ tokens: 30, tokenLatencyMs: 2 });
    const app = await harness.launch(DB);
    // Cut twice: the provider's retry inside the call is cut too, so the attempt fails and the queue retries it.
    harness.mock.setFault({ kind: "cut", afterTokens: 5, times: 2, endpoint: "chat", textIncludes: "retry me" });
    const id = await submit(app.url, "please retry me mid-answer");
    const stream = await openSse(`${app.url}/task/${id}/stream`);
    await stream.ended;
    const resets = stream.events.filter((e) => e.event === "reset").map((e) => dataOf(e).attempt);
    expect(resets).toEqual([1, 1, 2]);
    const final = finalOf(stream.events);
    expect(final.status).toBe("SUCCESS");
    const response = String(final.result?.response);
    expect(shownText(stream.events)).toBe(response);
    // Before each restart the client had partial text to drop: the start of the same answer, cut short.
    const dropped: string[] = [];
    for (const event of stream.events) {
      if (event.event === "reset") dropped.push("");
      else if (event.event === "token") dropped[dropped.length - 1] += String(dataOf(event).text);
    }
    expect(dropped).toHaveLength(3);
    for (const partial of dropped.slice(0, 2)) {
      expect(partial.length).toBeGreaterThan(0);
      expect(partial.length).toBeLessThan(response.length);
      expect(response.startsWith(partial)).toBe(true);
    }
  });

  test("a client that reconnects with Last-Event-ID gets exactly the tokens it missed; after the end, 204", async () => {
    harness.mock.setStream({ tokens: 100, tokenLatencyMs: 10 });
    const app = await harness.launch(DB);
    const id = await submit(app.url, "resume me after twenty tokens");
    const first = await openSse(`${app.url}/task/${id}/stream`);
    await first.waitFor((events) => tokensOf(events).length >= 20, "20 tokens");
    first.close();
    const lastSeen = first.events.at(-1)?.id as string;
    const second = await openSse(`${app.url}/task/${id}/stream`, { "last-event-id": lastSeen });
    await second.ended;
    const all = [...first.events, ...second.events];
    const ids = all.filter((e) => e.event !== "end").map((e) => e.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    expect(second.events[0]?.event).toBe("token");
    const final = finalOf(second.events);
    expect(shownText(all)).toBe(final.result?.response as string);
    expect(tokensOf(all).length).toBeGreaterThanOrEqual(75);

    const again = await fetch(`${app.url}/task/${id}/stream`, {
      headers: { "last-event-id": second.events.at(-1)?.id as string },
    });
    expect(again.status).toBe(204);
  });

  test("a task that fails for good ends its stream with the FAILURE, as GET /task/:id shows it", async () => {
    const app = await harness.launch(DB);
    harness.mock.setFault({ kind: "400", endpoint: "chat", textIncludes: "refuse me" });
    const id = await submit(app.url, "please refuse me");
    const stream = await openSse(`${app.url}/task/${id}/stream`);
    await stream.ended;
    expect(tokensOf(stream.events)).toHaveLength(0);
    const final = finalOf(stream.events);
    expect(final).toMatchObject({ status: "FAILURE", error: { code: "LLM_BAD_REQUEST", retriable: false } });
    expect(final).toEqual(await json(await fetch(`${app.url}/task/${id}`)));
  });

  test("an unknown task, or another tenant's, is a 404 in the error shape", async () => {
    const app = await harness.launch(DB, { API_KEYS: "alice:key-alice-0123456789,bob:key-bob-0123456789" });
    const alice = { authorization: "Bearer key-alice-0123456789" };
    const id = await submit(app.url, "alice's streamed task", { headers: alice });
    const mine = await openSse(`${app.url}/task/${id}/stream`, alice);
    await mine.ended;
    expect(finalOf(mine.events).status).toBe("SUCCESS");
    for (const [path, key] of [
      [`/task/${id}/stream`, "key-bob-0123456789"],
      ["/task/no-such-task/stream", "key-alice-0123456789"],
    ] as const) {
      const response = await fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("TASK_NOT_FOUND");
    }
  });
});
