/**
 * Consumer-group rebalances in the middle of the stream, the way users scale
 * the app: a second app joins the group (the broker takes partitions from the
 * first and gives them to it), then the first stops with SIGTERM (its
 * partitions go to the second). Offsets are committed only after the jobs are
 * in Redis, a batch stops at the chunk boundary where its heartbeat learns of
 * the rebalance, and the idempotent enqueue turns whatever the new owner reads
 * again into a counted duplicate: every event ends with exactly one job and one
 * result, and the leaving app hands its partitions over without a session
 * timeout's wait.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import { type Admin, AssignerProtocol, type Kafka } from "kafkajs";
import { connectRedis } from "../../src/redis/client";
import { generateEvents } from "../../tools/event-generator";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import {
  cleanUpIngest,
  committedAtEnd,
  countMarkers,
  countResults,
  ingestEnv,
  sendEvents,
} from "../integration/fixtures/kafka-ingest";
import { metricsOf } from "./fault-helpers";

const COUNT = 10_000;
const PARTITIONS = 6;
const prefix = uniquePrefix("kafka-rebalance");
const topic = `${prefix}_in`;
const groupId = `${prefix}_group`;

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
let redisUrl: string;
const apps: AppProcess[] = [];

type ConsumerHealth = {
  checks: {
    kafka_consumer?: { info?: { alive: number; restarts: number; lag: Record<string, number> } };
  };
};

/** The group as the broker sees it: its state, and the input partitions of each member. */
async function describeGroup(): Promise<{ state: string; members: Map<string, number[]> }> {
  const { groups } = await admin.describeGroups([groupId]);
  const members = new Map<string, number[]>();
  for (const member of groups[0]?.members ?? []) {
    const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
    members.set(member.memberId, decoded?.assignment[topic] ?? []);
  }
  return { state: groups[0]?.state ?? "Dead", members };
}

/** Member ids of an app's consumer threads, from their "joined the consumer group" lines (LOG_LEVEL=info). */
function memberIds(app: AppProcess): Set<string> {
  const ids = new Set<string>();
  for (const line of app.output().split("\n")) {
    if (!line.includes('"joined the consumer group"')) continue;
    try {
      const member = (JSON.parse(line) as { member?: unknown }).member;
      if (typeof member === "string") ids.add(member);
    } catch {
      // The last line may still be arriving.
    }
  }
  return ids;
}

/**
 * The partitions each app owns once the group is stable with exactly these
 * apps' threads as members, each partition owned once; undefined until then.
 */
async function settled(owners: readonly AppProcess[]): Promise<number[][] | undefined> {
  const { state, members } = await describeGroup();
  if (state !== "Stable") return undefined;
  const ids = owners.map(memberIds);
  if (members.size !== ids.reduce((n, set) => n + set.size, 0)) return undefined;
  if (![...members.keys()].every((member) => ids.some((set) => set.has(member)))) return undefined;
  const owned = ids.map((set) =>
    [...members]
      .filter(([member]) => set.has(member))
      .flatMap(([, p]) => p)
      .sort((x, y) => x - y),
  );
  const all = owned.flat();
  if (all.length !== PARTITIONS || new Set(all).size !== PARTITIONS) return undefined;
  return owned;
}

async function committedOffsets(): Promise<Map<number, bigint>> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
}

const tail = (app: AppProcess, name: string) => `--- ${name} ---\n${app.output().split("\n").slice(-40).join("\n")}\n`;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  redisUrl = await isolatedRedisUrl(7);
  redis = await connectRedis(redisUrl);
  // A few ms per answer: the stream is still flowing when each rebalance happens.
  mock = createMockOpenAiServer({ port: 0, latencyMs: { min: 5, max: 15 } });
});

afterAll(() => cleanUpIngest({ apps, mock, admin, redis, groupId, topics: [topic, `${topic}.dlq`] }), 60_000);

describe("consumer-group rebalances mid-stream", () => {
  test("a second app joining and the first leaving lose no event and create no second job", async () => {
    // Low watermarks and small chunks: backpressure holds both apps mid-stream (paused and resumed) while
    // workers catch up, so each rebalance lands with events consumed, events committed and events not read yet.
    // Ten jobs at a time per app against 5-15 ms answers: seconds of stream, so both rebalances land mid-stream.
    const env = {
      ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }),
      KAFKA_BATCH_SIZE: "100",
      KAFKA_QUEUE_HIGH_WATERMARK: "1000",
      KAFKA_QUEUE_LOW_WATERMARK: "500",
      WORKER_JOBS_PER_PROCESS: "10",
      // The consumer threads' "joined the consumer group" lines name their member ids.
      LOG_LEVEL: "info",
    };
    const a = await startApp(env);
    apps.push(a);
    await sendEvents(kafka, topic, [...generateEvents({ count: COUNT, idPrefix: prefix })]);
    let b: AppProcess | undefined;
    try {
      await waitFor(
        async () => (await countResults(redis)).success >= COUNT / 10,
        "a tenth of the results",
        60_000,
        50,
      );
      expect(await committedAtEnd(admin, groupId, topic)).toBe(false);
      // Only A runs: the deployment-wide counter is A's own.
      const consumedByA = (await metricsOf(a.url)).kafka.events_consumed;
      expect(consumedByA).toBeGreaterThan(0);

      // Rebalance 1: B joins the group and takes some of A's partitions.
      b = await startApp(env);
      apps.push(b);
      const joined = (await countResults(redis)).success;
      const [ownedByA, ownedByB] = (await waitFor(
        () => settled([a, b as AppProcess]),
        "the group to settle with both apps' threads",
        30_000,
        100,
      )) as [number[], number[]];
      expect(ownedByA.length).toBeGreaterThan(0);
      expect(ownedByB.length).toBeGreaterThan(0);
      // B consumes while A still runs: a commit on a partition only B owns is B's.
      const base = await committedOffsets();
      await waitFor(
        async () => {
          const now = await committedOffsets();
          return ownedByB.some((p) => (now.get(p) ?? -1n) > (base.get(p) ?? -1n));
        },
        "a commit by B on one of its partitions",
        30_000,
        50,
      );
      const beforeStop = await countResults(redis);
      expect(beforeStop.success).toBeLessThan(COUNT);
      expect(await committedAtEnd(admin, groupId, topic)).toBe(false);

      // Rebalance 2: A stops gracefully (commits what it enqueued, leaves the group) while B runs.
      const stopping = performance.now();
      expect(await a.stop()).toBe(0);
      const stopMs = Math.round(performance.now() - stopping);
      // The consumer pool kills a thread still stopping after 10 s, before it has left the group.
      expect(stopMs).toBeLessThan(10_000);
      // B has events left to read: only B can commit them now.
      expect(await committedAtEnd(admin, groupId, topic)).toBe(false);
      const afterStop = (await countResults(redis)).success;
      // A left the group: B takes every partition within a few heartbeats, not after a session timeout (10 s).
      const [ownedAtEnd] = (await waitFor(
        () => settled([b as AppProcess]),
        "B to own every partition",
        5_000,
        100,
      )) as [number[]];
      expect(ownedAtEnd).toHaveLength(PARTITIONS);

      await waitFor(async () => (await countResults(redis)).success >= COUNT, `${COUNT} results`, 90_000, 250);
      await waitFor(() => committedAtEnd(admin, groupId, topic), "offsets committed to the end", 30_000, 250);

      expect(await countResults(redis)).toEqual({ success: COUNT, other: 0 });
      // One idempotency marker per event: no event was enqueued as a second job.
      expect(await countMarkers(redis)).toBe(COUNT);
      expect(await redis.scard("bq:kafka_events:failed")).toBe(0);

      // Every event was enqueued once; whatever was read twice (a chunk enqueued by a revoked owner whose
      // commit the rebalance refused) was counted as a duplicate. A flushed its counters when it stopped.
      const metrics = await waitFor(
        async () => {
          const m = (await metricsOf(b?.url as string)).kafka;
          return m.events_enqueued === COUNT && m.events_consumed === m.events_enqueued + m.duplicates ? m : undefined;
        },
        "the Kafka counters to add up",
        10_000,
        200,
      );
      expect(metrics.dead_lettered).toBe(0);
      // B's own consumer threads: both alive, never restarted, no lag left on any partition.
      const health = await waitFor(
        async () => {
          const info = (await json<ConsumerHealth>(await fetch(`${b?.url}/health`))).checks.kafka_consumer?.info;
          const lags = Object.values(info?.lag ?? {});
          return lags.length === PARTITIONS && lags.every((lag) => lag === 0) ? info : undefined;
        },
        "B's /health to show no lag",
        15_000,
        250,
      );
      expect(health.alive).toBe(2);
      expect(health.restarts).toBe(0);

      const reruns = mock.counters().chat_requests - COUNT;
      process.stderr.write(
        `rebalance: B joined after ${joined} results (A kept partitions ${ownedByA}, B took ${ownedByB}); ` +
          `A stopped after ${beforeStop.success} results (exit 0 in ${stopMs} ms, ${afterStop} results then); ` +
          `${COUNT} results, ${metrics.duplicates} redelivered events skipped, ${reruns} LLM calls re-run\n`,
      );
    } catch (error) {
      process.stderr.write(tail(a, "app A") + (b ? tail(b, "app B") : ""));
      throw error;
    }
  }, 180_000);
});
