/**
 * Graceful shutdown: on SIGTERM or SIGINT, run the registered steps in the
 * reverse order of registration (stop accepting work first, close
 * connections last), within a deadline after which the process exits anyway.
 */
import { errorMessage } from "./errors";
import type { Logger } from "./log";

type Step = { name: string; run: () => Promise<unknown> | unknown };

export interface Lifecycle {
  /** Registers a step to run at shutdown; later registrations run first. */
  onShutdown(name: string, run: Step["run"]): void;
  /** Runs the steps once; further calls return the same promise. */
  shutdown(reason: string): Promise<void>;
}

export function createLifecycle(logger: Logger, deadlineMs = 15_000): Lifecycle {
  const steps: Step[] = [];
  let stopping: Promise<void> | undefined;

  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason, deadline_ms: deadlineMs }, "shutting down");
      const deadline = setTimeout(() => {
        logger.error({ deadline_ms: deadlineMs }, "shutdown deadline passed; exiting now");
        logger.flush();
        process.exit(1);
      }, deadlineMs);
      deadline.unref();
      for (const step of [...steps].reverse()) {
        try {
          await step.run();
          logger.debug({ step: step.name }, "shutdown step done");
        } catch (error) {
          logger.warn({ step: step.name, error: errorMessage(error) }, "shutdown step failed");
        }
      }
      clearTimeout(deadline);
      logger.info("stopped");
      logger.flush();
    })();
    return stopping;
  };

  return {
    onShutdown(name, run) {
      steps.push({ name, run });
    },
    shutdown,
  };
}

/** Wires SIGTERM/SIGINT to lifecycle.shutdown and exits when it is done. */
export function handleSignals(lifecycle: Lifecycle): void {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      void lifecycle.shutdown(signal).then(() => process.exit(0));
    });
  }
}
