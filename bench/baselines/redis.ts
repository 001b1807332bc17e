/**
 * Redis ceilings of this machine: one PING at a time (the round trip every
 * Redis call of the app pays at least once), and SETs in pipelines of 100
 * (what batching can reach). Run on the harness's own database; its keys are deleted after.
 */
import Redis from "ioredis";
import { measurePart } from "../load/measure-load";
import { deleteKeys } from "../measure/delete-keys";
import type { PartResult } from "../result";
import type { ScenarioContext } from "../scenarios/scenario";

const PIPELINE = 100;

export async function redisBaselines(
  { options, progress, signal }: ScenarioContext,
  serverPid?: number,
): Promise<PartResult[]> {
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
  redis.on("error", () => {}); // a failed command rejects with the reason; no second report
  await redis.connect().catch((error: unknown) => {
    throw new Error(
      `Redis at ${options.redisUrl} is not reachable (${String(error)}); start it with \`bun run services:up\``,
    );
  });
  const request = { unit: "commands", options, progress, signal, ...(serverPid ? { targetPid: serverPid } : {}) };
  try {
    const ping = await measurePart(
      {
        ...request,
        name: "redis PING round trip",
        operation: async () => ((await redis.ping()) === "PONG" ? { ok: true } : { ok: false, kind: "bad_reply" }),
      },
      "closed",
      0,
      "redis PING round trip",
      1,
    );
    const value = "x".repeat(100);
    let batch = 0;
    const pipelined = await measurePart(
      {
        ...request,
        name: `redis SET, pipelines of ${PIPELINE}`,
        unitsPerOperation: PIPELINE,
        operation: async () => {
          const pipeline = redis.pipeline();
          const base = (batch++ % 1000) * PIPELINE;
          for (let i = 0; i < PIPELINE; i++) pipeline.set(`bench:baseline:${base + i}`, value);
          const replies = (await pipeline.exec()) ?? [];
          return replies.every(([error]) => !error) ? { ok: true } : { ok: false, kind: "redis_error" };
        },
      },
      "closed",
      0,
      `redis SET, pipelines of ${PIPELINE}`,
      1,
    );
    return [ping, pipelined];
  } finally {
    // Only its own keys: a FLUSHDB would also drop every Query Engine index on the server.
    await deleteKeys(redis, "bench:baseline:*").catch(() => {});
    redis.disconnect();
  }
}
