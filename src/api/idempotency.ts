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
 * IDEMPOTENCY_TTL_SECONDS).
 */
import type Redis from "ioredis";
import { AppError } from "../errors";

/** How long an Idempotency-Key maps to its task. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How long a claim may stay in progress: far above the enqueue's own bound (3 s). */
const IN_PROGRESS_TTL_SECONDS = 30;

export type IdempotencyClaim =
  | { kind: "replay"; taskId: string }
  | { kind: "new"; complete(): Promise<void>; abandon(): Promise<void> };

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
      // A second pass only when the key was freed between SET NX and GET (the first request failed).
      for (let attempt = 0; attempt < 2; attempt++) {
        if ((await redis.set(redisKey, `p:${print}:${taskId}`, "EX", IN_PROGRESS_TTL_SECONDS, "NX")) === "OK") {
          return {
            kind: "new",
            complete: async () => {
              await redis.set(redisKey, `d:${print}:${taskId}`, "EX", IDEMPOTENCY_TTL_SECONDS);
            },
            abandon: async () => {
              await redis.del(redisKey);
            },
          };
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
        if (state !== "d" || !heldTask) throw inProgress();
        return { kind: "replay", taskId: heldTask };
      }
      throw inProgress();
    },
  };
}
