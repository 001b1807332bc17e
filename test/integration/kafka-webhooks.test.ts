/**
 * A Kafka event's callback_url gets its webhook too (issue 15 §4): the app
 * as users run it (api, consumer and worker roles) against the real broker
 * and Redis; events carry a callback_url to a Bun.serve receiver in this
 * test. An event whose callback_url breaks the rules goes to the DLQ with the
 * reason, as any event the API would refuse.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { Webhook } from "standardwebhooks";
import { DLQ_HEADERS } from "../../src/ingest/dead-letters";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import { cleanUpIngest, ingestEnv, ingestNames, readTopic, sendEvents } from "./fixtures/kafka-ingest";

const prefix = uniquePrefix("kafka-webhooks").replaceAll("-", "_");
const MASTER = `kafka-master-${crypto.randomUUID()}`;
const COUNT = 12;

let kafka: Kafka;
let admin: Admin;
let redis: Redis | undefined;
let mock: MockOpenAiServer | undefined;
let app: AppProcess | undefined;
let receiver: ReturnType<typeof Bun.serve>;
const received = new Map<string, { headers: Record<string, string>; body: string }[]>();

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(41);
  const { connectRedis } = await import("../../src/redis/client");
  redis = await connectRedis(redisUrl);
  receiver = Bun.serve({
    port: 0,
    async fetch(request) {
      const id = new URL(request.url).pathname.slice(1);
      const list = received.get(id) ?? [];
      list.push({ headers: Object.fromEntries(request.headers), body: await request.text() });
      received.set(id, list);
      // The first attempt of each fails: the retry path is the Kafka path too.
      return new Response(null, { status: list.length === 1 ? 503 : 204 });
    },
  });
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  app = await startApp({
    ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }),
    WEBHOOK_SECRET: MASTER,
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_RETRY_BASE_MS: "100",
  });
}, 60_000);

afterAll(async () => {
  receiver?.stop(true);
  await cleanUpIngest({ apps: app ? [app] : [], mock, admin, redis, ...ingestNames(prefix) });
});

describe("webhooks of Kafka events", () => {
  test("each event with a callback_url gets its signed result; a refused callback_url goes to the DLQ", async () => {
    const events = Array.from({ length: COUNT }, (_, i) => {
      const eventId = `${prefix}-${i}`;
      const value = JSON.stringify({
        event_id: eventId,
        text: `event ${i}: ${crypto.randomUUID()}`,
        use_cache: false,
        callback_url: `http://127.0.0.1:${receiver.port}/${eventId}`,
      });
      return { key: `user-${i % 3}`, value, eventId, malformed: undefined };
    });
    // Even WEBHOOK_ALLOW_PRIVATE never opens 0.0.0.0; ftp is never a webhook.
    const refused = [
      { eventId: `${prefix}-zero`, url: "http://0.0.0.0:9/x" },
      { eventId: `${prefix}-ftp`, url: "ftp://example.com/x" },
    ].map(({ eventId, url }) => ({
      key: "user-x",
      value: JSON.stringify({ event_id: eventId, text: "refused", callback_url: url }),
      eventId,
      malformed: undefined,
    }));
    await sendEvents(kafka, `${prefix}_in`, [...events, ...refused]);

    await waitFor(
      () => events.every((e) => (received.get(e.eventId)?.length ?? 0) >= 2),
      `the webhooks of ${COUNT} events, each on its second attempt`,
      60_000,
      100,
    );
    const secret = `whsec_${createHmac("sha256", MASTER).update("tenant:").digest("base64")}`;
    for (const event of events) {
      const [first, second] = received.get(event.eventId) ?? [];
      expect(second?.headers["webhook-id"]).toBe(`msg_${event.eventId}`);
      expect(first?.headers["webhook-id"]).toBe(`msg_${event.eventId}`);
      const payload = new Webhook(secret).verify(second?.body ?? "", second?.headers ?? {});
      const task = await json<{ status: string }>(await fetch(`${app?.url}/task/${event.eventId}`));
      expect(task.status).toBe("SUCCESS");
      expect(payload).toEqual({ type: "task.completed", timestamp: expect.any(String), data: task });
      const deliveries = await json<{ deliveries: { state: string; attempts: { status_code: number }[] }[] }>(
        await fetch(`${app?.url}/task/${event.eventId}/deliveries`),
      );
      expect(deliveries.deliveries[0]?.state).toBe("delivered");
      expect(deliveries.deliveries[0]?.attempts.map((a) => a.status_code)).toEqual([503, 204]);
    }

    const letters = await readTopic(kafka, `${prefix}_in.dlq`, refused.length);
    expect(letters.map((m) => m.headers?.[DLQ_HEADERS.reason]?.toString())).toEqual([
      "callback_url_refused",
      "callback_url_refused",
    ]);
    expect(letters.map((m) => m.headers?.[DLQ_HEADERS.detail]?.toString()).sort()).toEqual([
      expect.stringContaining("0.0.0.0 is an unspecified address"),
      expect.stringContaining("scheme ftp is not allowed"),
    ]);
    for (const { eventId } of refused) expect(received.has(eventId)).toBe(false);
  });
});
