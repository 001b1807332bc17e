/**
 * `bun bench null`: the harness against a server that does nothing (its own
 * process, so it does not share the generator's event loop). What it
 * measures is the harness's own cost: the figure behind "adds ≤ 1 ms to P99".
 */
import { join } from "node:path";
import { measureLoad } from "../load/measure-load";
import { freePort, spawnService } from "../targets/spawn";
import { postProcessOperation } from "./post-process";
import type { Scenario } from "./scenario";

export const nullScenario: Scenario = {
  name: "null",
  description: "the harness's own overhead and ceiling, against a null server it starts",
  async run({ options, progress, signal }) {
    const port = freePort();
    const server = await spawnService({
      name: "null server",
      command: ["bun", join(import.meta.dir, "..", "targets", "null-server.ts"), "--port", String(port)],
      cwd: process.cwd(),
      env: {},
      ready: `http://127.0.0.1:${port}/`,
    });
    const { operation, pool } = postProcessOperation(`http://127.0.0.1:${port}`, options);
    try {
      const outcome = await measureLoad({
        name: "null server",
        unit: "requests",
        operation,
        options,
        progress,
        signal,
        targetPid: server.pid,
      });
      return { target: "bench/targets/null-server.ts (202 at once, no work)", ...outcome };
    } finally {
      pool.close();
      await server.stop();
    }
  },
};
