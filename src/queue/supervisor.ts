/**
 * The worker role: runs WORKER_CONCURRENCY worker processes, restarts one that
 * dies (with backoff, and says so), and recycles one that asks for it after
 * WORKER_MAX_JOBS jobs or above its memory ceiling: the replacement is
 * started and ready first, then the old one drains (its in-flight jobs
 * finish) and exits, so capacity never drops to zero.
 */
import type { Subprocess } from "bun";
import type { Logger } from "../log";
import type { FromWorker, ToWorker } from "./worker-protocol";

export interface WorkerProcessInfo {
  worker_id: string;
  pid: number;
  state: "starting" | "ready" | "draining";
  started_at: number;
}

export interface Supervisor {
  /** Starts the processes and resolves when all are ready (or rejects when one cannot start). */
  start(): Promise<void>;
  /** Drains every process within the deadline, then kills what is left. */
  stop(deadlineMs: number): Promise<void>;
  processes(): WorkerProcessInfo[];
  counts(): { recycled: number; restarted: number };
}

interface Child {
  info: WorkerProcessInfo;
  proc: Subprocess;
  slot: number;
  ready: Promise<void>;
  replacing: boolean;
  expectedExit: boolean;
}

export function createSupervisor(deps: {
  count: number;
  /** The worker process's entry file. */
  entry: string;
  env?: Record<string, string>;
  logger: Logger;
  drainTimeoutMs: number;
  /** How long a new process may take to say it is ready. */
  readyTimeoutMs?: number;
}): Supervisor {
  const { count, entry, logger, drainTimeoutMs, readyTimeoutMs = 30_000 } = deps;
  const children = new Set<Child>();
  let stopping = false;
  let sequence = 0;
  const counts = { recycled: 0, restarted: 0 };
  const restartDelay = new Map<number, number>();

  const send = (child: Child, message: ToWorker) => {
    try {
      child.proc.send(message);
    } catch {
      // The process is gone; its exit handler deals with it.
    }
  };

  /** `recycling`: a replacement started beside a serving process, which keeps serving if this one fails. */
  const spawn = (slot: number, recycling: boolean): Child => {
    const workerId = `${process.pid}-w${slot}-${++sequence}`;
    let markReady: () => void = () => {};
    let markFailed: (error: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    const child: Child = {
      info: { worker_id: workerId, pid: 0, state: "starting", started_at: Date.now() },
      proc: undefined as unknown as Subprocess,
      slot,
      ready,
      replacing: false,
      expectedExit: false,
    };
    const timer = setTimeout(() => {
      markFailed(new Error(`worker ${workerId} not ready within ${readyTimeoutMs} ms`));
      // A late process is killed, never left to come up beside the one it was to replace. Outside a recycle its
      // exit restarts the slot with the growing backoff of a crash loop.
      if (recycling) child.expectedExit = true;
      child.proc.kill("SIGKILL");
    }, readyTimeoutMs);
    child.proc = Bun.spawn(["bun", entry], {
      env: { ...process.env, ...deps.env, WORKER_ID: workerId },
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      ipc(message: FromWorker) {
        if (message.type === "ready") {
          clearTimeout(timer);
          child.info.state = "ready";
          markReady();
        } else if (message.type === "recycle") {
          void recycle(child, message.reason, message.processed, message.rss_mb);
        }
      },
      onExit(_proc, exitCode, signalCode) {
        clearTimeout(timer);
        children.delete(child);
        markFailed(new Error(`worker ${workerId} exited before it was ready (code ${exitCode}, signal ${signalCode})`));
        if (child.expectedExit || stopping) {
          logger.info({ worker_id: workerId, code: exitCode }, "worker process exited");
          return;
        }
        // Backoff is for crash loops: a process that dies before it is ready doubles its slot's delay;
        // one that was serving (killed -9, OOM-killed) is replaced after the base delay.
        if (child.info.state === "ready") restartDelay.delete(slot);
        const delay = restartDelay.get(slot) ?? 500;
        restartDelay.set(slot, Math.min(delay * 2, 30_000));
        counts.restarted++;
        logger.error(
          { worker_id: workerId, code: exitCode, signal: signalCode, restart_in_ms: delay },
          "worker process died; its in-flight jobs return to the queue after the stall interval; restarting it",
        );
        setTimeout(() => {
          if (!stopping) startSlot(slot);
        }, delay).unref();
      },
    });
    child.info.pid = child.proc.pid;
    children.add(child);
    return child;
  };

  const startSlot = (slot: number, recycling = false): Child => {
    const child = spawn(slot, recycling);
    child.ready.then(
      () => {
        // A process that stays up for a minute resets its slot's restart backoff.
        setTimeout(() => restartDelay.delete(slot), 60_000).unref();
      },
      (error: Error) => logger.error({ error: error.message }, "worker process failed to start"),
    );
    return child;
  };

  const recycle = async (old: Child, reason: string, processed: number, rssMb: number) => {
    if (old.replacing || stopping) return;
    old.replacing = true;
    logger.info({ worker_id: old.info.worker_id, reason, processed, rss_mb: rssMb }, "recycling worker process");
    const replacement = startSlot(old.slot, true);
    try {
      await replacement.ready;
    } catch {
      // Keep the old process serving; it asks again after its next job.
      old.replacing = false;
      return;
    }
    counts.recycled++;
    old.expectedExit = true;
    old.info.state = "draining";
    send(old, { type: "drain", timeout_ms: drainTimeoutMs });
  };

  return {
    async start() {
      const started = Array.from({ length: count }, (_, slot) => startSlot(slot));
      await Promise.all(started.map((c) => c.ready));
      logger.info({ processes: count }, "worker processes ready");
    },
    async stop(deadlineMs) {
      stopping = true;
      const all = [...children];
      for (const child of all) {
        child.expectedExit = true;
        child.info.state = "draining";
        send(child, { type: "drain", timeout_ms: Math.max(0, deadlineMs - 1000) });
      }
      const exited = Promise.all(all.map((c) => c.proc.exited));
      const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), deadlineMs).unref());
      if ((await Promise.race([exited, timeout])) === "timeout") {
        for (const child of children) child.proc.kill("SIGKILL");
        logger.warn("worker processes killed at the shutdown deadline; their jobs return to the queue");
      }
    },
    processes: () => [...children].map((c) => ({ ...c.info })),
    counts: () => ({ ...counts }),
  };
}
