/**
 * `bun bench e2e`: POST /process → result available, through the whole
 * pipeline (Bee-Queue, worker processes, the LLM, the result store). The
 * result is awaited with GET /task/:id?wait=, which the app answers as soon
 * as the worker publishes the end. Latency runs from the intended send time
 * of the POST to the arrival of the result. Tasks bypass the semantic cache
 * (use_cache: false): this scenario measures the pipeline with its LLM call.
 *
 * When the harness started the app, the app's own latency histogram for the
 * same tasks is read from Redis and reported beside it (extra.app_*). With
 * --redis-stats, what each task cost Redis from accept to result
 * (extra.redis_*, measure/redis-stats.ts).
 */
import { buildRequest } from "../http/raw-client";
import { measureLoad, taskDrainMs } from "../load/measure-load";
import type { Operation } from "../load/open-loop";
import { createAppWindow } from "../measure/app-window";
import { countedOperation, redisWindowFor } from "../measure/redis-stats";
import { resolveTarget } from "../targets/app-target";
import { processBody } from "./post-process";
import type { Scenario } from "./scenario";
import { postAndAwait, taskPool } from "./task-outcome";

export const e2eScenario: Scenario = {
  name: "e2e",
  description: "POST /process → result (?wait=), the full pipeline, with the app's own percentiles beside",
  async run({ options, progress, signal }) {
    const target = await resolveTarget(options, progress, { roles: "api,worker" });
    const base = new URL(target.url);
    const pool = taskPool(target.url, options);
    // Every request sends the same text: without use_cache false, all but the first would be exact cache hits
    // and the run would measure the cache, not the pipeline with its LLM call.
    const post = buildRequest("POST", base, "/process", processBody(options, { use_cache: false }), {
      "Content-Type": "application/json",
    });
    const redis = redisWindowFor(options, target);
    const operation: Operation = countedOperation(() => postAndAwait(pool, base, post, options.waitMs), redis);
    const window = createAppWindow(target, redis);
    try {
      const outcome = await measureLoad({
        drainMs: taskDrainMs(options),
        name: "POST /process → result",
        unit: "tasks",
        operation,
        options,
        progress,
        signal,
        ...(target.pid === undefined ? {} : { targetPid: target.pid }),
        beforeMeasure: window.beforeMeasure,
        afterMeasure: window.afterMeasure,
      });
      return { target: target.describe, ...outcome };
    } finally {
      redis?.close();
      window.close();
      pool.close();
      await target.stop();
    }
  },
};
