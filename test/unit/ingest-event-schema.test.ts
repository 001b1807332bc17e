import { describe, expect, test } from "bun:test";
import { parseEvent, taskIdOf } from "../../src/ingest/event-schema";

const origin = { topic: "datos_crudos", partition: 3, offset: "42", key: "user-7" };
const parse = (value: string | null) => parseEvent(value === null ? null : Buffer.from(value), origin, 1000);

describe("Kafka event parsing", () => {
  test("a valid event becomes a job with the API's defaults, its event_id as task id and its Kafka origin", () => {
    const parsed = parse(JSON.stringify({ event_id: "e-1", text: "hello", metadata: { a: 1 }, timestamp: 5 }));
    expect(parsed).toEqual({
      ok: true,
      job: {
        task_id: "e-1",
        text: "hello",
        task_type: "general_analysis",
        use_cache: true,
        temperature: 0.7,
        max_tokens: 1000,
        source: "kafka",
        accepted_at: 1000,
        event: { topic: "datos_crudos", partition: 3, offset: "42", key: "user-7", event_id: "e-1" },
      },
    });
  });

  test("an event without event_id gets a task id from its topic, partition and offset, which a redelivery repeats", () => {
    const parsed = parse(JSON.stringify({ text: "hello" }));
    expect(parsed.ok && parsed.job.task_id).toBe("kafka:datos_crudos:3:42");
    expect(taskIdOf(undefined, origin)).toBe(taskIdOf(undefined, { ...origin, key: undefined }));
  });

  test("a callback_url without WEBHOOK_SECRET goes to the DLQ as webhooks_disabled, saying what to set", () => {
    const event = Buffer.from(JSON.stringify({ event_id: "e-2", text: "hi", callback_url: "https://example.com/h" }));
    expect(parseEvent(event, origin, 1000)).toMatchObject({
      ok: false,
      reason: "webhooks_disabled",
      detail: expect.stringContaining("WEBHOOK_SECRET"),
      event_id: "e-2",
    });
  });

  test("with webhooks on, the callback_url travels with the job, normalised; a refused one goes to the DLQ", () => {
    const on = { enabled: true, allowPrivate: false };
    const eventWith = (url: string) => Buffer.from(JSON.stringify({ text: "hi", callback_url: url }));
    const parsed = parseEvent(eventWith("HTTPS://Example.com/h?t=1"), origin, 1000, undefined, on);
    expect(parsed.ok && parsed.job.callback_url).toBe("https://example.com/h?t=1");
    for (const url of ["http://169.254.169.254/", "http://[::ffff:127.0.0.1]/", "ftp://example.com/"]) {
      expect(parseEvent(eventWith(url), origin, 1000, undefined, on)).toMatchObject({
        ok: false,
        reason: "callback_url_refused",
        detail: expect.stringContaining("/callback_url: "),
      });
    }
    const open = parseEvent(eventWith("http://127.0.0.1:9/h"), origin, 1000, undefined, { ...on, allowPrivate: true });
    expect(open.ok && open.job.callback_url).toBe("http://127.0.0.1:9/h");
  });

  test("with KAFKA_TENANT, the job belongs to that tenant (its key reads the task); without, to none", () => {
    const event = Buffer.from(JSON.stringify({ event_id: "e-1", text: "hello" }));
    const owned = parseEvent(event, origin, 1000, undefined, undefined, "comments");
    expect(owned).toMatchObject({ ok: true, job: { tenant: "comments", source: "kafka" } });
    const open = parseEvent(event, origin, 1000);
    expect(open.ok && "tenant" in open.job).toBe(false);
  });

  test("an event that is not JSON is rejected as not_json", () => {
    expect(parse('{"text": ')).toMatchObject({ ok: false, reason: "not_json" });
    expect(parse(null)).toMatchObject({ ok: false, reason: "not_json" });
  });

  test("an event that fails the HTTP API's schema is rejected as schema, naming the field", () => {
    expect(parse(JSON.stringify({ text: "" }))).toMatchObject({
      ok: false,
      reason: "schema",
      detail: expect.stringContaining("/text"),
    });
    expect(parse(JSON.stringify({ text: "x", temperature: 3 }))).toMatchObject({ ok: false, reason: "schema" });
    expect(parse(JSON.stringify({ text: "x", task_type: "Bad-Type" }))).toMatchObject({ ok: false, reason: "schema" });
    expect(parse(JSON.stringify({ text: "x", event_id: "has space" }))).toMatchObject({ ok: false, reason: "schema" });
    expect(parse("[1,2]")).toMatchObject({ ok: false, reason: "schema" });
    expect(parse("null")).toMatchObject({ ok: false, reason: "schema" });
  });

  test("numbers are JSON numbers, as over HTTP: a numeric string is rejected, naming the field", () => {
    expect(parse(JSON.stringify({ text: "x", max_tokens: "50" }))).toMatchObject({
      ok: false,
      reason: "schema",
      detail: expect.stringContaining("/max_tokens"),
    });
    expect(parse(JSON.stringify({ text: "x", temperature: "0.5" }))).toMatchObject({
      ok: false,
      reason: "schema",
      detail: expect.stringContaining("/temperature"),
    });
  });

  test("a task type no worker has a prompt for is rejected as unknown_task_type, as the API refuses it", () => {
    const known = new Set(["summarization", "general_analysis"]);
    const event = Buffer.from(JSON.stringify({ event_id: "e-9", text: "x", task_type: "translation" }));
    expect(parseEvent(event, origin, 1000, known)).toEqual({
      ok: false,
      reason: "unknown_task_type",
      detail: "/task_type: unknown task type 'translation'; known: general_analysis, summarization",
      event_id: "e-9",
    });
    expect(parseEvent(Buffer.from(JSON.stringify({ text: "x" })), origin, 1000, known)).toMatchObject({ ok: true });
  });
});
