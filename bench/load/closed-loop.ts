/**
 * Closed-loop load: `concurrency` callers, each sending its next operation as
 * soon as the previous one ends. It finds the most a target can take, but its
 * latencies hide stalls (nothing is sent while the target is stuck), so they
 * are reported from the real send time and the summary labels them as such.
 */
import type { Recorder } from "../measure/recorder";
import { errorKind, type LoadRun, type LoadState, type Operation } from "./open-loop";

export interface ClosedLoopOptions {
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  operation: Operation;
  recorder: (measuredStart: number) => Recorder;
  signal?: AbortSignal;
  onTick?: (state: LoadState) => void;
  now?: () => number;
}

export async function runClosedLoop(options: ClosedLoopOptions): Promise<LoadRun> {
  const { concurrency, durationMs, warmupMs, operation, signal, onTick } = options;
  const now = options.now ?? (() => performance.now());
  const start = now();
  const measuredStart = start + warmupMs;
  const end = measuredStart + durationMs;
  let recorder: Recorder | undefined;
  let sent = 0;
  let measuredSent = 0;
  let inFlight = 0;

  const caller = async () => {
    while (!signal?.aborted && now() < end) {
      const index = sent++;
      const began = now();
      const measured = began >= measuredStart;
      if (measured) measuredSent++;
      inFlight++;
      const outcome = await operation(index).catch((error: unknown) => ({ ok: false, kind: errorKind(error) }));
      inFlight--;
      if (measured) {
        recorder ??= options.recorder(measuredStart);
        recorder.record(began, now(), outcome);
      }
    }
  };

  const timer = setInterval(() => {
    const t = now();
    if (t >= measuredStart) recorder ??= options.recorder(measuredStart);
    recorder?.tick(t);
    onTick?.({ phase: t < measuredStart ? "warmup" : "measure", elapsedMs: t - start, sent, inFlight, recorder });
  }, 100);
  await Promise.all(Array.from({ length: concurrency }, caller));
  clearInterval(timer);
  recorder ??= options.recorder(measuredStart);
  const stoppedAt = Math.min(now(), end);
  recorder.finish(stoppedAt);
  return {
    recorder,
    sent: measuredSent,
    measuredMs: Math.max(0, stoppedAt - measuredStart),
    interrupted: signal?.aborted === true,
    unfinished: 0,
  };
}
