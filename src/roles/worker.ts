/**
 * The worker role of a process: a supervisor that runs WORKER_CONCURRENCY
 * worker processes (roles/worker-process.ts), restarts the dead, recycles the
 * tired, and drains them at shutdown.
 */
import { join } from "node:path";
import type { Config } from "../config";
import type { Lifecycle } from "../lifecycle";
import type { Logger } from "../log";
import { createSupervisor, type Supervisor } from "../queue/supervisor";

/** How long a draining worker process may finish its jobs; the supervisor waits a little longer. */
const DRAIN_TIMEOUT_MS = 10_000;

export async function startWorkerRole(deps: {
  config: Config["worker"];
  logger: Logger;
  lifecycle: Lifecycle;
}): Promise<Supervisor> {
  const supervisor = createSupervisor({
    count: deps.config.processes,
    entry: join(import.meta.dir, "worker-process.ts"),
    logger: deps.logger.child({ component: "supervisor" }),
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
  });
  deps.lifecycle.onShutdown("worker processes", () => supervisor.stop(DRAIN_TIMEOUT_MS + 2000));
  await supervisor.start();
  return supervisor;
}
