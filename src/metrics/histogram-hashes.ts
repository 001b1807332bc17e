/**
 * Cumulative histograms kept per writer in Redis hashes: each writer (a
 * process) has one field in every histogram hash and one in a last-seen hash,
 * and the reader adds up every field. The hashes must not grow with every
 * writer that ever lived, so a writer's fields are folded into one field of
 * retired writers (`_retired`): by the writer itself when it closes, or by any
 * live writer's janitor once the writer has not written for a while (killed,
 * OOM, crashed). Its samples keep counting, exactly once:
 *
 * - A fold is one atomic step: every histogram field of the writer is added
 *   to `_retired` and deleted, with its last-seen entry.
 * - The janitor decides "not seen for a while" inside that step, on the
 *   values it folds: a writer that wrote in between is alive and keeps its
 *   fields, so concurrent janitors (or a janitor and a closing writer) fold
 *   each field once.
 * - A writer that was folded while alive (cut off from Redis, stopped) finds
 *   its last-seen entry gone on its next write, which then writes nothing:
 *   the writer takes out what was folded and writes only the rest
 *   (metrics.ts). Exact unless the reply of its last write before the gap was
 *   lost: then up to one flush of its samples counts twice.
 */
import { createHash } from "node:crypto";
import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";
import { retryDelay, sleep } from "../util/backoff";
import { addEncoded, createDurationHistogram, encodeHistogram, type Histogram } from "./histogram";

export interface HistogramHashes {
  /** Hash: field = writer, value = epoch ms of its last write. */
  seen: string;
  /** The histogram hashes: field = writer, value = its cumulative histogram (encoded). */
  histograms: readonly string[];
  /** The field that holds the sum of retired writers' histograms. */
  retired: string;
}

/*
 * One write of a writer's histograms and its last-seen time, or nothing when
 * the writer's fields were folded since its last write (its last-seen entry
 * is gone): writing its cumulative histograms again would count the folded
 * samples twice.
 * KEYS[1] the last-seen hash   KEYS[2..] the histogram hashes written
 * ARGV[1] the writer's field   ARGV[2] now (epoch ms)
 * ARGV[3] "1" when a write of this writer went through before (else a first write, which has no entry to find)
 * ARGV[4..] the encoded histograms, in the order of KEYS[2..]
 * Returns 1 when folded (nothing written), else 0.
 */
const WRITE_SCRIPT = `
if ARGV[3] == "1" and redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 then return 1 end
for i = 2, #KEYS do redis.call("HSET", KEYS[i], ARGV[1], ARGV[i + 2]) end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return 0
`;

/*
 * Folds a writer, if nothing it reads changed since the caller read it
 * (compare and set: decoding HDR is JS, so the sums are computed outside;
 * unlike WATCH, the writes of other writers to the same hashes do not abort
 * it, only a change to `_retired` or to this writer's own fields).
 * KEYS[1] the last-seen hash   KEYS[2..n] the histogram hashes
 * ARGV[1] the writer's field   ARGV[2] the retired field
 * ARGV[3] the writer's last-seen value as read ("" when absent)
 * For KEYS[i], i >= 2: ARGV[3i-2] SHA1 of the retired field as read, ARGV[3i-1]
 * SHA1 of the writer's field as read ("" when absent), ARGV[3i] the new
 * retired field ("" leaves it)
 * Returns 1 when folded, 0 when something changed (the caller reads again).
 */
const FOLD_SCRIPT = `
local function digest(key, field)
  local value = redis.call("HGET", key, field)
  if value then return redis.sha1hex(value) end
  return ""
end
if (redis.call("HGET", KEYS[1], ARGV[1]) or "") ~= ARGV[3] then return 0 end
for i = 2, #KEYS do
  if digest(KEYS[i], ARGV[2]) ~= ARGV[3 * i - 2] or digest(KEYS[i], ARGV[1]) ~= ARGV[3 * i - 1] then return 0 end
end
for i = 2, #KEYS do
  if ARGV[3 * i] ~= "" then redis.call("HSET", KEYS[i], ARGV[2], ARGV[3 * i]) end
  redis.call("HDEL", KEYS[i], ARGV[1])
end
redis.call("HDEL", KEYS[1], ARGV[1])
return 1
`;

type ScriptClient = Redis & { histogramFold(numberOfKeys: number, ...args: string[]): Promise<number> };

/** The replies of a pipeline, or the first error among them. */
async function execOrThrow(pipeline: ChainableCommander): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  const failure = replies.find(([error]) => error)?.[0];
  if (failure) throw failure;
  return replies.map(([, value]) => value);
}

const sha1 = (text: string | null) => (text === null ? "" : createHash("sha1").update(text).digest("hex"));

/**
 * Queues on `tx` (a MULTI) the write of a writer's histograms and its
 * last-seen time; its reply is 1 when the writer had been folded (nothing
 * written). EVAL rather than EVALSHA: inside MULTI, a NOSCRIPT (after a
 * SCRIPT FLUSH) would fail this command alone after the rest went through.
 */
export function queueWrite(
  tx: ChainableCommander,
  hashes: HistogramHashes,
  writer: string,
  at: number,
  writtenBefore: boolean,
  encoded: readonly (readonly [key: string, text: string])[],
): void {
  const keys = [hashes.seen, ...encoded.map(([key]) => key)];
  tx.eval(WRITE_SCRIPT, keys.length, ...keys, writer, at, writtenBefore ? 1 : 0, ...encoded.map(([, text]) => text));
}

/**
 * Folds `writer`'s fields into the retired field and deletes its last-seen
 * entry, atomically. `local` gives a writer's own histograms (by hash key),
 * which replace what Redis holds of it (a closing writer knows more than its
 * last write). With `unseenSince`, folds only a writer last seen before that
 * epoch ms: one seen since is alive, and one with no entry is already folded.
 * True when this call folded it.
 */
export async function foldWriter(
  redis: Redis,
  hashes: HistogramHashes,
  writer: string,
  options: { local?: ReadonlyMap<string, Histogram>; unseenSince?: number } = {},
  attempts = 10,
): Promise<boolean> {
  if (!("histogramFold" in redis)) redis.defineCommand("histogramFold", { lua: FOLD_SCRIPT });
  const client = redis as ScriptClient;
  const { local, unseenSince } = options;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const read = redis.pipeline().hget(hashes.seen, writer);
    for (const key of hashes.histograms) read.hmget(key, hashes.retired, writer);
    const [seen, ...fields] = (await execOrThrow(read)) as [string | null, ...[string | null, string | null][]];
    if (unseenSince !== undefined && (seen === null || Number(seen) >= unseenSince)) return false;
    const args: string[] = [];
    let changes = seen !== null;
    for (const [i, key] of hashes.histograms.entries()) {
      const [retired = null, stored = null] = fields[i] ?? [];
      const own = local?.get(key);
      if (!own?.totalCount && stored === null) {
        args.push(sha1(retired), "", "");
        continue;
      }
      const sum = createDurationHistogram();
      try {
        if (retired !== null && !addEncoded(sum, retired))
          throw new Error(`${key} field ${hashes.retired} is not a histogram`);
        // A stored field that does not decode is dropped rather than kept for ever.
        if (own) sum.add(own);
        else if (stored !== null) addEncoded(sum, stored);
        args.push(sha1(retired), sha1(stored), encodeHistogram(sum));
        changes = true;
      } finally {
        sum.destroy();
      }
    }
    if (!changes) return false;
    const keys = [hashes.seen, ...hashes.histograms];
    if ((await client.histogramFold(keys.length, ...keys, writer, hashes.retired, seen ?? "", ...args)) === 1) {
      return true;
    }
    // Another fold went in first (processes closing together, concurrent janitors): spread the next tries out.
    await sleep(retryDelay(attempt + 1, 5, 200));
  }
  throw new Error(`the histograms of ${writer} kept changing; gave up after ${attempts} attempts`);
}

/**
 * The janitor: folds every writer last seen more than `after` ms before
 * `now` (except `self`); returns the writers this call folded. Fields with no
 * last-seen entry (written by a version before last-seen times existed) get
 * one of `now`, so they are folded `after` ms later.
 */
export async function foldUnseenWriters(
  redis: Redis,
  hashes: HistogramHashes,
  options: { now: number; after: number; self?: string },
): Promise<string[]> {
  const { now, after, self } = options;
  const read = redis.pipeline().hgetall(hashes.seen);
  for (const key of hashes.histograms) read.hkeys(key);
  const [seen = {}, ...fields] = (await execOrThrow(read)) as [Record<string, string>, ...string[][]];
  const unknown = new Set(fields.flat().filter((id) => id !== hashes.retired && seen[id] === undefined));
  if (unknown.size > 0) {
    const mark = redis.pipeline();
    for (const id of unknown) mark.hsetnx(hashes.seen, id, now);
    await execOrThrow(mark);
  }
  const folded: string[] = [];
  for (const [writer, at] of Object.entries(seen)) {
    if (writer === self || Number(at) >= now - after) continue;
    if (await foldWriter(redis, hashes, writer, { unseenSince: now - after })) folded.push(writer);
  }
  return folded;
}
