/**
 * `bun bench baseline`: the ceilings of this machine, measured in the same
 * run so every other figure can be quoted as a ratio: Redis round trip and
 * pipelined writes, an Elysia route that only validates (under the same load
 * model and --rate as `http`), and kafkajs consume-only.
 */
import { join } from "node:path";
import { kafkaConsumeBaseline } from "../baselines/kafka-consume";
import { redisBaselines } from "../baselines/redis";
import { measureLoad } from "../load/measure-load";
import type { PartResult } from "../result";
import { freePort, spawnService } from "../targets/spawn";
import { postProcessOperation } from "./post-process";
import type { Scenario } from "./scenario";

export const baselineScenario: Scenario = {
  name: "baseline",
  description: "ceilings: Redis round trip + pipelined SET, validate-only Elysia route, kafkajs consume-only",
  async run(context) {
    const { options, progress, signal } = context;
    const parts: PartResult[] = [];
    progress.note("baseline 1/3: Redis");
    parts.push(...(await redisBaselines(context)));
    if (signal.aborted) return { target: "this machine's ceilings", parts };

    progress.note("baseline 2/3: validate-only Elysia route");
    const port = freePort();
    const server = await spawnService({
      name: "validate-only server",
      command: ["bun", join(import.meta.dir, "..", "validate-only-server.ts")],
      cwd: process.cwd(),
      env: { PORT: String(port) },
      ready: `http://127.0.0.1:${port}/health`,
    });
    const { operation, pool } = postProcessOperation(`http://127.0.0.1:${port}`, options);
    try {
      const outcome = await measureLoad({
        name: "validate-only POST /process",
        unit: "requests",
        operation,
        options,
        progress,
        signal,
        targetPid: server.pid,
      });
      parts.push(...outcome.parts);
    } finally {
      pool.close();
      await server.stop();
    }
    if (signal.aborted) return { target: "this machine's ceilings", parts };

    progress.note("baseline 3/3: kafkajs consume-only");
    parts.push(await kafkaConsumeBaseline(context));
    return { target: "this machine's ceilings (Redis, Elysia, Kafka)", parts };
  },
};
