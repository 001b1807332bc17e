/**
 * Kafka ingestion end to end, the app as users run it (api, consumer and
 * worker roles in one process) against the real broker and Redis, the LLM
 * behind the project's mock OpenAI server: every valid event becomes exactly
 * one result, malformed events go to the DLQ with their reasons, redelivered
 * events never become second jobs, committed offsets reach the end.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { DLQ_HEADERS } from "../../src/ingest/dead-letters";
import { INPUT_PARTITIONS } from "../../src/ingest/kafka";
import type { MetricsSnapshot } from "../../src/metrics/snapshot";
import { generateEvents } from "../../tools/event-generator";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { emptyDatabase } from "../../tools/redis-admin";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, requireRedis, uniquePrefix, waitFor } from "../helpers/services";
import { committedAtEnd, countResults, ingestEnv, readTopic, sendEvents } from "./fixtures/kafka-ingest";

/** 10,000 in CI (about 20 s); KAFKA_TEST_EVENTS=100000 is the full run (see BENCHMARKS.md). */
const COUNT = Number(process.env.KAFKA_TEST_EVENTS ?? 10_000);
const DEADLINE_MS = Math.max(90_000, COUNT * 3);
const prefix = uniquePrefix("kafka-ingest").replaceAll("-", "_");
const topicIn = `${prefix}_in`;
const topicOut = `${prefix}_out`;
const dlq = `${topicIn}.dlq`;
const groupId = `${prefix}_group`;

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
let app: AppProcess;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(3);
  (await requireRedis()).disconnect();
  const { connectRedis } = await import("../../src/redis/client");
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  app = await startApp(ingestEnv({ prefix, redisUrl, llmUrl: mock.url }));
}, 60_000);

afterAll(async () => {
  const code = await app?.stop();
  if (code !== 0) process.stderr.write(app?.output() ?? "");
  await mock?.stop();
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.deleteTopics({ topics: [topicIn, topicOut, dlq] }).catch(() => {});
  await admin.disconnect();
  if (redis) await emptyDatabase(redis);
  await redis?.quit();
});

const metrics = async () => json<MetricsSnapshot>(await fetch(`${app.url}/metrics`));

describe("Kafka ingestion", () => {
  const events = [...generateEvents({ count: COUNT, idPrefix: prefix, malformedShare: 0.01, duplicateShare: 0.2 })];
  const valid = events.filter((e) => e.malformed === undefined);
  const malformed = events.filter((e) => e.malformed !== undefined);

  test(
    "every valid event becomes exactly one result; malformed ones go to the DLQ with their reasons; offsets are committed to the end",
    async () => {
      // Each kind the API would refuse, an unknown task type included (it used to be enqueued and fail unseen).
      expect(new Set(malformed.map((e) => e.malformed))).toEqual(new Set(["not_json", "schema", "unknown_task_type"]));
      await sendEvents(kafka, topicIn, events);

      await waitFor(
        async () => (await metrics()).completed_tasks >= valid.length,
        `${valid.length} completed tasks`,
        DEADLINE_MS,
        250,
      );
      const results = await countResults(redis);
      expect(results).toEqual({ success: valid.length, other: 0 });
      await waitFor(
        () => committedAtEnd(admin, groupId, topicIn),
        "committed offsets equal to the end offsets",
        15_000,
        200,
      );

      const letters = await readTopic(kafka, dlq, malformed.length);
      expect(letters).toHaveLength(malformed.length);
      const reasons = letters.map((m) => m.headers?.[DLQ_HEADERS.reason]?.toString()).sort();
      expect(reasons).toEqual(malformed.map((e) => e.malformed ?? "").sort());
      for (const letter of letters) {
        expect(letter.headers?.[DLQ_HEADERS.topic]?.toString()).toBe(topicIn);
        expect(letter.headers?.[DLQ_HEADERS.offset]?.toString()).toMatch(/^[0-9]+$/);
        expect(letter.headers?.[DLQ_HEADERS.partition]?.toString()).toMatch(/^[0-9]+$/);
      }

      // Results out: one per event at least (at-least-once), keyed like the input, no event missing.
      const out = await readTopic(kafka, topicOut, valid.length, DEADLINE_MS);
      const outIds = new Set(out.map((m) => (JSON.parse(m.value?.toString() ?? "{}") as { task_id: string }).task_id));
      expect(outIds.size).toBe(valid.length);
      const keyOf = new Map(valid.map((e) => [e.eventId, e.key]));
      for (const m of out.slice(0, 100)) {
        const { task_id } = JSON.parse(m.value?.toString() ?? "{}") as { task_id: string };
        expect(m.key?.toString()).toBe(keyOf.get(task_id));
      }

      await waitFor(
        async () => {
          const { kafka } = await metrics();
          return kafka.events_consumed >= events.length && kafka.results_published >= valid.length;
        },
        "consumed and results-published counters",
        5000,
        200,
      );
      const m = await metrics();
      expect(m.kafka).toMatchObject({
        events_consumed: events.length,
        events_enqueued: valid.length,
        dead_lettered: malformed.length,
        duplicates: 0,
        total_lag: 0,
        // Nothing crashed: each result went out once, and none again.
        results_republished: 0,
      });
      expect(m.kafka.results_published).toBeGreaterThanOrEqual(valid.length);
      expect(m.completed_tasks).toBe(valid.length);
      const health = await json<{
        checks: Record<
          string,
          { ok: boolean; info?: { alive: number; assigned_partitions: number[]; consumed: number; enqueued: number } }
        >;
      }>(await fetch(`${app.url}/health`));
      // This process's own counts (one process here, so they equal /metrics' deployment-wide sums).
      expect(health.checks.kafka_consumer).toMatchObject({
        ok: true,
        info: { alive: 2, consumed: events.length, enqueued: valid.length },
      });
      // The group settled: both threads hold partitions, and the topic's 6 are each assigned once.
      const assigned = health.checks.kafka_consumer?.info?.assigned_partitions ?? [];
      expect(assigned).toHaveLength(2);
      expect(assigned.every((n) => n > 0)).toBe(true);
      expect(assigned.reduce((a, b) => a + b, 0)).toBe(INPUT_PARTITIONS);
    },
    DEADLINE_MS * 2,
  );

  test("a redelivered event never becomes a second job, also after its first job finished and was removed", async () => {
    const again = valid.slice(0, 500);
    await sendEvents(kafka, topicIn, again);
    await waitFor(
      async () => (await metrics()).kafka.duplicates >= again.length,
      "500 duplicates counted",
      30_000,
      200,
    );
    await waitFor(() => committedAtEnd(admin, groupId, topicIn), "committed offsets at the end", 15_000, 200);
    const m = await metrics();
    expect(m.kafka.duplicates).toBe(again.length);
    expect(m.kafka.events_enqueued).toBe(valid.length);
    expect(m.completed_tasks).toBe(valid.length);
    expect(m.queues.kafka_events?.waiting).toBe(0);
  }, 60_000);

  test("SIGTERM stops the consumer threads cleanly: exit 0, offsets committed, the group left (empty)", async () => {
    const before = (await metrics()).kafka.events_consumed;
    await sendEvents(kafka, topicIn, valid.slice(0, 200));
    await waitFor(
      async () => (await metrics()).kafka.events_consumed >= before + 200,
      "200 more consumed",
      30_000,
      100,
    );
    expect(await app.stop()).toBe(0);
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups[0]?.state).toBe("Empty");
    expect(await committedAtEnd(admin, groupId, topicIn)).toBe(true);
  }, 60_000);
});
