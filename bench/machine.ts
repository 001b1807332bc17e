/** What the result says about the machine it ran on, so figures are never quoted without it. */
import { cpus, loadavg, totalmem } from "node:os";
import type { RunResult } from "./result";

export function describeMachine(): RunResult["machine"] {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${process.arch}`,
    bun: Bun.version,
    loadAvg: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}
