/**
 * The examples a fine-tune learns from (issue 17 §6): tasks whose answer got
 * positive feedback (rating ≥ 4, or `correct: true` with no rating below 4),
 * indexed per task type and tenant scope, scored by the time of the feedback.
 * Any other feedback on the same task (a low rating, `correct: false`)
 * takes it out again: a fine-tune never learns an answer a client judged bad.
 *
 * Each example is copied, at feedback time, into its own key
 * (`finetune:example:{task_id}`: the text, the result, the feedback), which
 * lives FINETUNE_EXAMPLE_TTL_DAYS (90 days by default). The task's own
 * record expires after RESULT_TTL_SECONDS (an hour by default): indexing the
 * record alone, the training data an operator collected over weeks would be
 * an hour's worth when they asked for a fine-tune. The copy costs one key per
 * positively rated task, and is written in the feedback's MULTI (no extra
 * round trip). An index member whose copy is gone (expired) is skipped, and
 * counted, by whoever reads the examples; members older than the TTL are
 * dropped from the index whenever it is written.
 *
 * Keys: `finetune:examples:{task_type}` (ZSET; `…@{tenant}` for a tenant's
 * tasks), `finetune:example:{task_id}` (JSON), `finetune:scopes` (SET of the
 * scopes that have an index, for the scheduled mode).
 */
import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";
import type { TaskResult } from "../task/contract";
import type { TaskState } from "./task-store";

/** Whose examples: one task type, of one tenant (API key name), or of tasks without one. */
export interface ExampleScope {
  taskType: string;
  tenant?: string;
}

export interface Feedback {
  correct?: boolean;
  rating?: number;
}

/** One positively rated task, as copied at feedback time. */
export interface TrainingExample {
  task_id: string;
  task_type: string;
  tenant?: string;
  /** The task's text; absent when the record kept none (RESULT_KEEP_INPUT=false). */
  input?: string;
  result: TaskResult;
  feedback: Feedback;
  /** When the feedback was given, epoch ms (the index's score). */
  at: number;
}

/** A rating of 4 or 5, or `correct: true` without a rating below 4; `correct: false` is never positive. */
export function isPositive(feedback: Feedback): boolean {
  if (feedback.correct === false) return false;
  if (feedback.rating !== undefined) return feedback.rating >= 4;
  return feedback.correct === true;
}

/** A scope's name in keys and in `finetune:scopes`: `task_type`, or `task_type@tenant` (`@` is in neither pattern). */
export function scopeName(scope: ExampleScope): string {
  return scope.tenant === undefined ? scope.taskType : `${scope.taskType}@${scope.tenant}`;
}

export function parseScope(name: string): ExampleScope {
  const at = name.indexOf("@");
  return at < 0 ? { taskType: name } : { taskType: name.slice(0, at), tenant: name.slice(at + 1) };
}

export const examplesKey = (scope: ExampleScope) => `finetune:examples:${scopeName(scope)}`;
export const exampleKey = (taskId: string) => `finetune:example:${taskId}`;
export const SCOPES_KEY = "finetune:scopes";

/** Copies read per round trip. */
const READ_CHUNK = 500;

export interface TrainingExamples {
  /**
   * Adds to the feedback's MULTI (TaskStore.recordFeedback's `also`): a positive feedback indexes the task
   * and copies it; any other takes it out of the index and deletes its copy.
   */
  queueFeedback(tx: ChainableCommander, task: TaskState, feedback: Feedback, at: number): void;
  /**
   * The scope's examples, oldest first, with those whose copy is gone counted apart; `newestAt` is the
   * newest index entry's time (what the next scheduled fine-tune counts new examples from). With `newest`,
   * only the newest that many index entries are read (a training file is built in memory), and `older` says
   * how many were left out.
   */
  read(
    scope: ExampleScope,
    options?: { newest?: number },
  ): Promise<{ examples: TrainingExample[]; gone: number; newestAt: number | undefined; older: number }>;
  /** Entries of the scope's index newer than `since` (epoch ms, exclusive). */
  countSince(scope: ExampleScope, since: number): Promise<number>;
  /** Every scope that has had a positive example. */
  scopes(): Promise<ExampleScope[]>;
}

export function createTrainingExamples(deps: { redis: Redis; ttlSeconds: number }): TrainingExamples {
  const { redis, ttlSeconds } = deps;
  return {
    queueFeedback(tx, task, feedback, at) {
      const scope: ExampleScope = {
        taskType: task.task_type ?? task.result?.task_type ?? "unknown",
        ...(task.tenant ? { tenant: task.tenant } : {}),
      };
      const index = examplesKey(scope);
      if (!isPositive(feedback) || !task.result) {
        tx.zrem(index, task.task_id).del(exampleKey(task.task_id));
        return;
      }
      const example: TrainingExample = {
        task_id: task.task_id,
        task_type: scope.taskType,
        ...(scope.tenant ? { tenant: scope.tenant } : {}),
        ...(task.input === undefined ? {} : { input: task.input }),
        result: task.result,
        feedback,
        at,
      };
      tx.set(exampleKey(task.task_id), JSON.stringify(example), "EX", ttlSeconds)
        .zadd(index, at, task.task_id)
        // Entries whose copy has expired by now: the index does not grow for ever.
        .zremrangebyscore(index, "-inf", `(${at - ttlSeconds * 1000}`)
        .sadd(SCOPES_KEY, scopeName(scope));
    },
    async read(scope, options = {}) {
      const key = examplesKey(scope);
      const newest = options.newest;
      const [entries, total] =
        newest === undefined
          ? [await redis.zrange(key, "0", "-1", "WITHSCORES"), undefined]
          : await Promise.all([redis.zrange(key, String(-Math.max(1, newest)), "-1", "WITHSCORES"), redis.zcard(key)]);
      const ids: string[] = [];
      for (let i = 0; i < entries.length; i += 2) ids.push(entries[i] as string);
      const newestAt = entries.length > 0 ? Number(entries[entries.length - 1]) : undefined;
      const examples: TrainingExample[] = [];
      let gone = 0;
      for (let start = 0; start < ids.length; start += READ_CHUNK) {
        const chunk = ids.slice(start, start + READ_CHUNK);
        const copies = await redis.mget(...chunk.map(exampleKey));
        for (const copy of copies) {
          if (copy === null) gone++;
          else examples.push(JSON.parse(copy) as TrainingExample);
        }
      }
      return { examples, gone, newestAt, older: total === undefined ? 0 : Math.max(0, total - ids.length) };
    },
    countSince: (scope, since) => redis.zcount(examplesKey(scope), `(${since}`, "+inf"),
    async scopes() {
      return (await redis.smembers(SCOPES_KEY)).sort().map(parseScope);
    },
  };
}
