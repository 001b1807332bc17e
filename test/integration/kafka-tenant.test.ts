/**
 * KAFKA_TENANT: with API keys on, the tasks of Kafka events belong to a
 * tenant, whose key reads them (GET /task/:id) and whose dashboard gets their
 * completions (GET /events); another tenant's key sees none of it. The app as
 * users run it (api, consumer and worker roles), the real broker and Redis.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { openSse } from "../../tools/sse-client";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import { cleanUpIngest, ingestEnv, ingestNames, sendEvents } from "./fixtures/kafka-ingest";

const prefix = uniquePrefix("kafka-tenant").replaceAll("-", "_");
const COMMENTS = "comments-key-1234";
const OTHER = "other-key-12345";

let kafka: Kafka;
let admin: Admin;
let redis: Redis | undefined;
let mock: MockOpenAiServer | undefined;
let app: AppProcess | undefined;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(43);
  const { connectRedis } = await import("../../src/redis/client");
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  app = await startApp({
    ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }),
    API_KEYS: `comments:${COMMENTS},other:${OTHER}`,
    KAFKA_TENANT: "comments",
  });
}, 60_000);

afterAll(async () => {
  await cleanUpIngest({ apps: app ? [app] : [], mock, admin, redis, ...ingestNames(prefix) });
});

test("the tasks of Kafka events belong to KAFKA_TENANT: its key reads them and its dashboard gets them, no other", async () => {
  const base = app?.url as string;
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const dashboard = await openSse(`${base}/events`, as(COMMENTS));
  const elsewhere = await openSse(`${base}/events`, as(OTHER));
  await Bun.sleep(200);
  const ids = [0, 1, 2].map((i) => `${prefix}-${i}`);
  await sendEvents(
    kafka,
    ingestNames(prefix).topics[0] as string,
    ids.map((eventId, i) => ({
      key: `user-${i}`,
      value: JSON.stringify({ event_id: eventId, text: `comment ${i}: the delivery was fast`, use_cache: false }),
      eventId,
      malformed: undefined,
    })),
  );
  for (const id of ids) {
    const task = await waitFor(
      async () => {
        const body = (await (await fetch(`${base}/task/${id}`, { headers: as(COMMENTS) })).json()) as {
          status?: string;
        };
        return body.status === "SUCCESS" ? body : undefined;
      },
      `Kafka task ${id} to succeed for its tenant`,
      30_000,
      100,
    );
    expect(task.status).toBe("SUCCESS");
    expect((await fetch(`${base}/task/${id}`, { headers: as(OTHER) })).status).toBe(404);
  }
  await dashboard.waitFor((events) => events.length >= 3, "the three completions on the tenant's dashboard");
  expect(new Set(dashboard.events.map((e) => (JSON.parse(e.data) as { task_id: string }).task_id))).toEqual(
    new Set(ids),
  );
  expect(elsewhere.events).toEqual([]);
  dashboard.close();
  elsewhere.close();
}, 90_000);
