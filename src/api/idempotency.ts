/**
 * Idempotency-Key for POST /process, after the IETF draft "The
 * Idempotency-Key HTTP Header Field": the first request with a key claims it
 * and creates the task; a retry answers the same task id once the task is
 * durably queued; a retry while the first request is still in progress gets
 * 409 with Retry-After (never a task id that may not exist yet, or never
 * will if the first enqueue fails); the same key with a different request
 * body gets 422.
 *
 * The claim is one key `idem:{tenant}:{sha256(key)}` holding
 * `{state}:{body fingerprint}:{task id}`: state `p` (in progress, a short TTL
 * so a process that dies mid-request frees the key) then `d` (durable, kept
 * IDEMPOTENCY_TTL_SECONDS), or `u` (unknown: Redis did not answer the
 * enqueue, so the job may exist). A retry of a `u` claim resumes it with the
 * same task id, which the enqueue writes at most once: a retry never creates
 * a second task (issue 13 §2). A claim is deleted only when the job is
 * certainly not queued.
 */
import type Redis from "ioredis";
import { AppError } from "../errors";

/** How long an Idempotency-Key maps to its task. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How long a claim may stay in progress: far above the enqueue's own bound (3 s). */
const IN_PROGRESS_TTL_SECONDS = 30;

export interface OpenClaim {
  /** The task id this request enqueues: a new one, or the one of a claim whose enqueue had no answer. */
  taskId: string;
  /** The job is durably queued: retries now get its id. */
  complete(): Promise<void>;
  /** The job is certainly not queued: the key is free again. */
  abandon(): Promise<void>;
  /** The enqueue had no answer; the job may exist: a retry resumes this task id. */
  unknown(): Promise<void>;
}

export type IdempotencyClaim = { kind: "replay"; taskId: string } | ({ kind: "new" | "resume" } & OpenClaim);

const sha256 = (value: string) => new Bun.CryptoHasher("sha256").update(value).digest("hex");

/** The request's identity for the key: the same body after defaults gives the same fingerprint. */
export function fingerprint(values: readonly unknown[]): string {
  return sha256(JSON.stringify(values)).slice(0, 32);
}

export function createIdempotency(redis: Redis) {
  const inProgress = () =>
    new AppError(
      "IDEMPOTENCY_IN_PROGRESS",
      "a request with this Idempotency-Key is still being accepted; retry shortly",
      {
        status: 409,
        retryAfter: 1,
      },
    );

  return {
    async claim(tenant: string | undefined, key: string, print: string, taskId: string): Promise<IdempotencyClaim> {
      const redisKey = `idem:${tenant ?? "-"}:${sha256(key)}`;
      const open = (kind: "new" | "resume", id: string): IdempotencyClaim => ({
        kind,
        taskId: id,
        complete: async () => {
          await redis.set(redisKey, `d:${print}:${id}`, "EX", IDEMPOTENCY_TTL_SECONDS);
        },
        abandon: async () => {
          await redis.del(redisKey);
        },
        unknown: async () => {
          await redis.set(redisKey, `u:${print}:${id}`, "EX", IDEMPOTENCY_TTL_SECONDS);
        },
      });
      // A second pass only when the key was freed between SET NX and GET (the first request failed).
      for (let attempt = 0; attempt < 2; attempt++) {
        if ((await redis.set(redisKey, `p:${print}:${taskId}`, "EX", IN_PROGRESS_TTL_SECONDS, "NX")) === "OK") {
          return open("new", taskId);
        }
        const held = await redis.get(redisKey);
        if (held === null) continue;
        const [state, heldPrint, heldTask] = held.split(":", 3);
        if (heldPrint !== print) {
          throw new AppError(
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request body; use a new key for a new request",
            { status: 422 },
          );
        }
        if (state === "u" && heldTask) {
          // Take the resumption over (one at a time): p again, with a short TTL, then enqueue the same id.
          const taken = await redis.set(redisKey, `p:${print}:${heldTask}`, "EX", IN_PROGRESS_TTL_SECONDS, "XX");
          if (taken === "OK") return open("resume", heldTask);
          continue;
        }
        if (state !== "d" || !heldTask) throw inProgress();
        return { kind: "replay", taskId: heldTask };
      }
      throw inProgress();
    },
  };
}
