/**
 * The consumer lag per partition that /metrics shows (any process answers
 * it, so it lives in a Redis hash), kept true for an autoscaler that sums it:
 * each process writes only the partitions its threads hold now (the pool
 * filters on the current assignment), and every write also deletes the
 * entries measured more than LAG_MAX_AGE_MS ago, whoever wrote them.
 *
 * Without the age-out a revoked partition, a topic no longer consumed, or a
 * process gone for good kept its last figure for ever: the key's EXPIRE was
 * pushed back by every write of any live process, and the pool re-wrote its
 * own stale entries each second (issue 13 §10: lag 5 still reported 7.5
 * minutes after its last update, so total lag never reached 0). The threads
 * report lag only after a batch; the broker is read as well every
 * LAG_POLL_INTERVAL_MS so an idle or paused partition stays fresh.
 */
import type Redis from "ioredis";
import type { Admin } from "kafkajs";
import type { Config } from "../config";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { metricsKeys } from "../metrics/keys";
import { defineScript } from "../redis/script";
import type { PartitionLag } from "./consumer-protocol";

const LAG_WRITE_INTERVAL_MS = 1000;
/** The group's committed offsets against the log end, read by the admin client this often. */
const LAG_POLL_INTERVAL_MS = 5000;
/** An entry measured longer ago than this is deleted: 12 broker polls missed, nobody holds it any more. */
export const LAG_MAX_AGE_MS = 60_000;

/*
 * KEYS[1] the lag hash   ARGV[1] oldest `at` kept (epoch ms)   ARGV[2] the key's TTL, ms
 * ARGV[3..] pairs: field `topic:partition`, value JSON {lag, committed, at}
 * Writes the pairs, deletes every entry older than ARGV[1] (or unreadable),
 * and sets the TTL, so the hash goes once no process writes it. Atomic: a
 * check and delete from two processes never remove an entry just refreshed.
 */
const WRITE_AND_AGE = defineScript<number>(
  "ingestLagWrite",
  `
for i = 3, #ARGV, 2 do redis.call("HSET", KEYS[1], ARGV[i], ARGV[i + 1]) end
local entries = redis.call("HGETALL", KEYS[1])
local oldest = tonumber(ARGV[1])
local deleted = 0
for i = 1, #entries, 2 do
  local ok, entry = pcall(cjson.decode, entries[i + 1])
  local at = ok and type(entry) == "table" and tonumber(entry.at) or nil
  if at == nil or at < oldest then
    redis.call("HDEL", KEYS[1], entries[i])
    deleted = deleted + 1
  end
end
if redis.call("EXISTS", KEYS[1]) == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return deleted
`,
);

export interface LagReporter {
  /** Clears the timers and writes the last figures. Never throws. */
  stop(): Promise<void>;
}

export function startLagReporting(deps: {
  config: Pick<Config["kafka"], "topicIn" | "groupId">;
  redis: Redis;
  logger: Logger;
  /** The lag of the partitions this process's threads hold now. */
  current: () => readonly PartitionLag[];
  /** Where the broker's figures go (the pool keeps the newest per partition). */
  record: (lags: readonly PartitionLag[]) => void;
  admin?: Pick<Admin, "fetchTopicOffsets" | "fetchOffsets">;
  now?: () => number;
}): LagReporter {
  const { config, redis, logger, current, record, admin, now = Date.now } = deps;
  const key = metricsKeys().kafkaLag;

  const poll = async () => {
    if (!admin) return;
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(config.topicIn),
      admin.fetchOffsets({ groupId: config.groupId, topics: [config.topicIn] }),
    ]);
    const at = now();
    record(
      ends.map((end) => {
        const offset = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? "-1";
        // -1: nothing committed yet; the whole partition (from its low watermark) is lag.
        const from = offset === "-1" ? BigInt(end.low) : BigInt(offset);
        const lag = Number(BigInt(end.high) - from);
        return { topic: config.topicIn, partition: end.partition, lag: Math.max(0, lag), committed: offset, at };
      }),
    );
  };
  const write = async () => {
    const pairs = current().flatMap((l) => [
      `${l.topic}:${l.partition}`,
      JSON.stringify({ lag: l.lag, committed: l.committed, at: l.at }),
    ]);
    await WRITE_AND_AGE.run(redis, [key], [now() - LAG_MAX_AGE_MS, LAG_MAX_AGE_MS, ...pairs]);
  };

  const writeTimer = setInterval(() => {
    write().catch((error: unknown) => logger.warn({ error: errorMessage(error) }, "writing the consumer lag failed"));
  }, LAG_WRITE_INTERVAL_MS);
  const pollTimer = setInterval(() => {
    poll().catch((error: unknown) => logger.debug({ error: errorMessage(error) }, "reading the consumer lag failed"));
  }, LAG_POLL_INTERVAL_MS);

  return {
    async stop() {
      clearInterval(writeTimer);
      clearInterval(pollTimer);
      await write().catch(() => {});
    },
  };
}
