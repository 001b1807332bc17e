/**
 * A Kafka event's fate reaches the results topic whichever way its task ends
 * (issue 13 §5): the app as users run it (api, consumer and worker roles)
 * against the real broker and Redis, the mock OpenAI server refusing (400)
 * the events whose text asks for it. Each event gets exactly one message,
 * keyed like the input: SUCCESS with its result, or FAILURE with the error
 * GET /task/:id shows.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import type { ResultMessage } from "../../src/ingest/result-producer";
import type { MetricsSnapshot } from "../../src/metrics/snapshot";
import type { GeneratedEvent } from "../../tools/event-generator";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, requireRedis, uniquePrefix, waitFor } from "../helpers/services";
import { cleanUpIngest, ingestEnv, readTopic, sendEvents } from "./fixtures/kafka-ingest";

const REFUSE = "refuse-this-event";
const COUNT = 60;
const prefix = uniquePrefix("kafka-results-failures").replaceAll("-", "_");

let kafka: Kafka;
let admin: Admin;
let redis: Redis | undefined;
let mock: MockOpenAiServer | undefined;
let app: AppProcess | undefined;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(12);
  (await requireRedis()).disconnect();
  const { connectRedis } = await import("../../src/redis/client");
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  // The provider refuses these events for good: LLM_BAD_REQUEST, not retriable.
  mock.setFault({ kind: "400", endpoint: "chat", textIncludes: REFUSE });
  app = await startApp(ingestEnv({ prefix, redisUrl, llmUrl: mock.url }));
}, 60_000);

afterAll(async () => {
  await cleanUpIngest({
    apps: app ? [app] : [],
    mock,
    admin,
    redis,
    groupId: `${prefix}_group`,
    topics: [`${prefix}_in`, `${prefix}_out`, `${prefix}_in.dlq`],
  });
});

/** Every third event is refused; refused ones skip the cache, so that no similar answer can serve them. */
function eventsOf(count: number): (GeneratedEvent & { refused: boolean })[] {
  return Array.from({ length: count }, (_, i) => {
    const refused = i % 3 === 0;
    const eventId = `${prefix}-${i}`;
    const text = refused ? `${REFUSE}: request number ${i}` : `tell me about the weather of day ${i} in city ${i * 7}`;
    const value = JSON.stringify({ event_id: eventId, text, ...(refused ? { use_cache: false } : {}) });
    return { key: `user-${i % 7}`, value, eventId, malformed: undefined, refused };
  });
}

const metrics = async () => json<MetricsSnapshot>(await fetch(`${app?.url}/metrics`));

describe("failures to the results topic", () => {
  test("an event whose task fails for good is published as FAILURE with its error, once, keyed like its input", async () => {
    const events = eventsOf(COUNT);
    const refused = events.filter((e) => e.refused);
    await sendEvents(kafka, `${prefix}_in`, events);

    await waitFor(
      async () => {
        const m = await metrics();
        return m.completed_tasks + m.failed_tasks >= COUNT && m.kafka.results_published >= COUNT;
      },
      `${COUNT} tasks ended and their outcomes published`,
      60_000,
      200,
    );
    const out = await readTopic(kafka, `${prefix}_out`, COUNT, 30_000);
    // Exactly one message per event (nothing crashed, so at-least-once delivered each once).
    expect(out).toHaveLength(COUNT);
    const byId = new Map(out.map((m) => [(JSON.parse(String(m.value)) as ResultMessage).task_id, m]));
    expect(byId.size).toBe(COUNT);

    for (const event of events) {
      const message = byId.get(event.eventId ?? "");
      expect(message?.key?.toString()).toBe(event.key);
      const body = JSON.parse(String(message?.value)) as ResultMessage;
      expect(body.event_id).toBe(event.eventId);
      expect(body.status).toBe(event.refused ? "FAILURE" : "SUCCESS");
      if (body.status !== "FAILURE") continue;
      expect(body.error).toMatchObject({ code: "LLM_BAD_REQUEST", retriable: false });
      expect(Object.keys(body)).toEqual(["task_id", "event_id", "status", "error", "source"]);
      expect(body.source.topic).toBe(`${prefix}_in`);
      // The error on the topic is the one a client reads.
      const task = await json<{ status: string; error?: unknown }>(await fetch(`${app?.url}/task/${body.task_id}`));
      expect(task.status).toBe("FAILURE");
      expect(body.error).toEqual(task.error as typeof body.error);
    }

    const m = await metrics();
    expect(m.failed_tasks).toBe(refused.length);
    expect(m.kafka).toMatchObject({
      results_published: COUNT,
      results_failures_published: refused.length,
      results_unpublished: 0,
      results_republished: 0,
    });
  }, 120_000);
});
