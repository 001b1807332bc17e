/**
 * `bun bench http`: POST /process acceptance (202 once the job is durably in
 * Redis). The harness starts the API role alone, so accepted jobs pile up in
 * Redis as they would ahead of a slow LLM, and nothing else competes for CPU.
 * With --redis-stats, what each accepted task cost Redis (measure/redis-stats.ts).
 */
import { measureLoad } from "../load/measure-load";
import { countedOperation, redisWindowFor } from "../measure/redis-stats";
import { resolveTarget } from "../targets/app-target";
import { postProcessOperation } from "./post-process";
import type { Scenario } from "./scenario";

export const httpScenario: Scenario = {
  name: "http",
  description: "POST /process accept latency and throughput (API role only, unless --url)",
  async run({ options, progress, signal }) {
    const target = await resolveTarget(options, progress, { roles: "api" });
    const { operation, pool } = postProcessOperation(target.url, options);
    const redis = redisWindowFor(options, target);
    try {
      const outcome = await measureLoad({
        name: "POST /process",
        unit: "requests",
        operation: countedOperation(operation, redis),
        options,
        progress,
        signal,
        ...(target.pid === undefined ? {} : { targetPid: target.pid }),
        ...(redis ? { beforeMeasure: redis.start, afterMeasure: redis.stop } : {}),
      });
      return { target: target.describe, ...outcome };
    } finally {
      redis?.close();
      pool.close();
      await target.stop();
    }
  },
};
