/**
 * The "automatic" of the roadmap (issue 17 §6): every
 * FINETUNE_AUTO_INTERVAL_MS, a fine-tune starts for each task type (and
 * tenant) that gathered FINETUNE_AUTO_NEW_EXAMPLES positive examples
 * since its last fine-tune started, with the defaults of POST /fine-tunes.
 * Counting from the last start, not the last success, means a fine-tune that
 * failed is not retried every interval on the same data: it waits for new
 * examples, or for an operator's POST /fine-tunes.
 *
 * Every API process runs the timer; one round per interval runs, in
 * whichever process takes the round's lease first (`finetune:auto:lease`,
 * held for the interval, never released early). A scope with a fine-tune in
 * progress is left alone.
 */
import type Redis from "ioredis";
import { AppError, errorMessage } from "../errors";
import type { Logger } from "../log";
import { acquireLease } from "../redis/lease";
import { type ExampleScope, scopeName, type TrainingExamples } from "../store/training-examples";
import type { FineTuneRecords } from "./fine-tune-records";
import type { FineTuner } from "./fine-tuner";

export const AUTO_LEASE_KEY = "finetune:auto:lease";

export interface AutoFineTuneDeps {
  redis: Redis;
  tuner: Pick<FineTuner, "start">;
  records: Pick<FineTuneRecords, "lastExampleAt">;
  examples: Pick<TrainingExamples, "scopes" | "countSince">;
  intervalMs: number;
  minNewExamples: number;
  /** POST /fine-tunes's defaults, which the scheduled fine-tunes take. */
  defaults: { validationFraction: number; minExamples: number; weight: number };
  logger: Logger;
}

export interface AutoFineTune {
  /** One round, if this process takes its lease: the fine-tunes it started. */
  runOnce(): Promise<string[]>;
  stop(): void;
}

export function startAutoFineTune(deps: AutoFineTuneDeps): AutoFineTune {
  const { redis, logger, intervalMs } = deps;
  const owner = `${process.pid}-${Bun.randomUUIDv7()}`;

  const startIfDue = async (scope: ExampleScope): Promise<string | undefined> => {
    const since = (await deps.records.lastExampleAt(scope)) ?? 0;
    const fresh = await deps.examples.countSince(scope, since);
    if (fresh < deps.minNewExamples) return undefined;
    try {
      const record = await deps.tuner.start({
        taskType: scope.taskType,
        ...(scope.tenant === undefined ? {} : { tenant: scope.tenant }),
        ...deps.defaults,
        origin: "auto",
        createdBy: "scheduler",
      });
      logger.info(
        { fine_tune_id: record.id, scope: scopeName(scope), new_examples: fresh },
        "scheduled fine-tune started",
      );
      return record.id;
    } catch (error) {
      // In progress, or fewer usable examples than indexed (expired, no text): the next round sees.
      if (error instanceof AppError && error.status === 409) {
        logger.debug({ scope: scopeName(scope), code: error.code }, "scheduled fine-tune not started");
        return undefined;
      }
      logger.warn({ scope: scopeName(scope), error: errorMessage(error) }, "scheduled fine-tune could not start");
      return undefined;
    }
  };

  const runOnce = async () => {
    if (!(await acquireLease(redis, AUTO_LEASE_KEY, owner, intervalMs))) return [];
    const started: string[] = [];
    for (const scope of await deps.examples.scopes()) {
      const id = await startIfDue(scope);
      if (id) started.push(id);
    }
    return started;
  };

  const timer = setInterval(() => {
    runOnce().catch((error) => logger.warn({ error: errorMessage(error) }, "scheduled fine-tune round failed"));
  }, intervalMs);
  timer.unref?.();
  return { runOnce, stop: () => clearInterval(timer) };
}
