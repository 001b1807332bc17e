/**
 * A fine-tune's record in Redis, which is all the state its follower has:
 * a process that restarts, or another one, carries on from it.
 *
 *   finetune:record:{id}        JSON of the record (no expiry: a record is small and is the history)
 *   finetune:records            ZSET of ids by creation time (GET /fine-tunes, newest first)
 *   finetune:active             SET of ids that have not ended: what followers look for
 *   finetune:lease:{id}         the follower's lease (redis/lease.ts): one process follows a fine-tune
 *   finetune:scope:{scope}      the id of the scope's fine-tune in progress: one at a time per scope (held
 *                               like a lease without expiry, freed by the write that ends the fine-tune)
 *   finetune:last-example-at    HASH scope → the newest example's time when its last fine-tune started
 *
 * Only the holder of a fine-tune's lease writes its record after creation,
 * so writes need no compare-and-set. The write that ends a fine-tune also
 * takes it out of the active set and frees its scope, in one MULTI.
 */
import type Redis from "ioredis";
import { RELEASE_LEASE } from "../redis/lease";
import { execChecked } from "../redis/script";
import { type ExampleScope, scopeName } from "../store/training-examples";
import type { TrainingCounts } from "./training-file";

/** Our states: `preparing` (files built, being uploaded, job being created), the provider's, then ours again. */
export const FINE_TUNE_STATUSES = [
  "preparing",
  "validating_files",
  "queued",
  "running",
  "registering",
  "succeeded",
  "failed",
  "cancelled",
] as const;
export type FineTuneStatus = (typeof FINE_TUNE_STATUSES)[number];
export const FINE_TUNE_ENDED: ReadonlySet<FineTuneStatus> = new Set(["succeeded", "failed", "cancelled"]);

export interface FineTuneRecord {
  id: string;
  status: FineTuneStatus;
  task_type: string;
  /** The tenant whose examples it learns from; absent: tasks without one. */
  tenant?: string;
  /** The model as the product names it (`openai/gpt-4o-mini`), and as the provider does. */
  base_model: string;
  provider: string;
  provider_model: string;
  suffix?: string;
  validation_fraction: number;
  min_examples: number;
  /** What the fine-tuned model is registered with: a variant at this weight, in this experiment if given. */
  weight: number;
  experiment_id?: string;
  /** `api` (POST /fine-tunes) or `auto` (FINETUNE_AUTO_INTERVAL_MS). */
  origin: "api" | "auto";
  /** Who asked (the audit's actor); the scheduler for `auto`. */
  created_by: string;
  created_at: number;
  updated_at: number;
  finished_at?: number;
  counts: TrainingCounts;
  /** The newest example's feedback time (what the scheduler counts new examples from). */
  last_example_at?: number;
  files?: { training?: string; validation?: string };
  provider_job_id?: string;
  /** The provider's own status, as last read. */
  provider_status?: string;
  fine_tuned_model?: string;
  trained_tokens?: number;
  /** The variant the fine-tuned model was registered as. */
  variant?: { experiment_id: string; variant: string };
  error?: { code: string; message: string };
  /** A problem on the way that did not end it (a registration retried, no registrar). */
  note?: string;
}

const recordKey = (id: string) => `finetune:record:${id}`;
const RECORDS = "finetune:records";
const ACTIVE = "finetune:active";
const LAST_EXAMPLE_AT = "finetune:last-example-at";
export const leaseKey = (id: string) => `finetune:lease:${id}`;
const scopeKey = (scope: ExampleScope) => `finetune:scope:${scopeName(scope)}`;
const scopeOf = (record: FineTuneRecord): ExampleScope => ({
  taskType: record.task_type,
  ...(record.tenant === undefined ? {} : { tenant: record.tenant }),
});

export interface FineTuneRecords {
  get(id: string): Promise<FineTuneRecord | undefined>;
  /** Newest first. */
  list(limit: number): Promise<FineTuneRecord[]>;
  /** The ids that have not ended. */
  active(): Promise<string[]>;
  /**
   * Records a new fine-tune and makes it its scope's one in progress; the id of the one in progress
   * instead when there is one (a holder whose record ended or vanished is taken over).
   */
  create(record: FineTuneRecord): Promise<{ created: true } | { created: false; inProgress: string }>;
  /** Writes the record; one that ended leaves the active set and frees its scope. */
  save(record: FineTuneRecord): Promise<void>;
  /** When the scope's last fine-tune started, its newest example's time. */
  lastExampleAt(scope: ExampleScope): Promise<number | undefined>;
}

export function createFineTuneRecords(redis: Redis): FineTuneRecords {
  const parse = (raw: string | null) => (raw === null ? undefined : (JSON.parse(raw) as FineTuneRecord));
  const records: FineTuneRecords = {
    get: async (id) => parse(await redis.get(recordKey(id))),
    async list(limit) {
      const ids = await redis.zrevrange(RECORDS, 0, limit - 1);
      if (ids.length === 0) return [];
      return (await redis.mget(...ids.map(recordKey))).flatMap((raw) => parse(raw) ?? []);
    },
    active: () => redis.smembers(ACTIVE),
    async create(record) {
      const scope = scopeKey(scopeOf(record));
      // The record first: a scope's holder without a record is then surely stale, never one being created.
      await redis.set(recordKey(record.id), JSON.stringify(record));
      let taken = false;
      let holder: string | null = null;
      for (let attempt = 0; attempt < 2 && !taken; attempt++) {
        taken = (await redis.set(scope, record.id, "NX")) === "OK";
        if (taken) break;
        holder = await redis.get(scope);
        const held = holder ? await records.get(holder) : undefined;
        if (held && !FINE_TUNE_ENDED.has(held.status)) break;
        // A stale holder (its record ended or is gone): free the scope if it still names it, and try again.
        await RELEASE_LEASE.run(redis, [scope], [holder ?? ""]);
      }
      if (!taken) {
        await redis.del(recordKey(record.id));
        return { created: false, inProgress: holder ?? "unknown" };
      }
      const tx = redis.multi().zadd(RECORDS, record.created_at, record.id).sadd(ACTIVE, record.id);
      if (record.last_example_at !== undefined)
        tx.hset(LAST_EXAMPLE_AT, scopeName(scopeOf(record)), record.last_example_at);
      await execChecked(tx);
      return { created: true };
    },
    async save(record) {
      const tx = redis.multi().set(recordKey(record.id), JSON.stringify(record));
      if (FINE_TUNE_ENDED.has(record.status)) {
        tx.srem(ACTIVE, record.id);
        // Frees the scope only if it still names this fine-tune.
        RELEASE_LEASE.queue(redis, tx, [scopeKey(scopeOf(record))], [record.id]);
      }
      await execChecked(tx);
    },
    async lastExampleAt(scope) {
      const value = await redis.hget(LAST_EXAMPLE_AT, scopeName(scope));
      return value === null ? undefined : Number(value);
    },
  };
  return records;
}
