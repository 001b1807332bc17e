/**
 * Open-loop load at a constant rate, as wrk2 does it: request i is due at
 * start + i / rate whatever happened to earlier ones, and its latency is
 * measured from that intended time. A server that stalls therefore shows
 * the stall in every request that was due during it (coordinated-omission
 * correction); a closed-loop tool would simply send fewer requests.
 */
import type { Outcome, Recorder } from "../measure/recorder";
import { startPacer } from "./pacer";

export type Operation = (index: number) => Promise<Outcome>;

export interface OpenLoopOptions {
  rate: number;
  durationMs: number;
  warmupMs: number;
  operation: Operation;
  /** Receives the measured phase (warm-up results are dropped). */
  recorder: (measuredStart: number) => Recorder;
  signal?: AbortSignal;
  /** Wait at most this long, after the last send, for operations still in flight. */
  drainMs?: number;
  onTick?: (state: LoadState) => void;
  now?: () => number;
}

export interface LoadState {
  phase: "warmup" | "measure" | "drain";
  elapsedMs: number;
  sent: number;
  inFlight: number;
  recorder: Recorder | undefined;
}

export interface LoadRun {
  recorder: Recorder;
  /** Operations sent in the measured phase. */
  sent: number;
  /** ms of the measured phase actually run (shorter when interrupted). */
  measuredMs: number;
  interrupted: boolean;
  /** Operations still unanswered when the drain deadline passed (counted as "unfinished" errors). */
  unfinished: number;
}

export async function runOpenLoop(options: OpenLoopOptions): Promise<LoadRun> {
  const { rate, durationMs, warmupMs, operation, signal, drainMs = 10_000, onTick } = options;
  const now = options.now ?? (() => performance.now());
  const intervalMs = 1000 / rate;
  const start = now();
  const measuredStart = start + warmupMs;
  const end = measuredStart + durationMs;
  const total = Math.floor(((warmupMs + durationMs) * rate) / 1000);
  const firstMeasured = Math.ceil((warmupMs * rate) / 1000);
  let recorder: Recorder | undefined;
  let next = 0;
  let inFlight = 0;
  let stoppedAt: number | undefined;
  const pendingMeasured = new Set<number>();

  const launch = (index: number, intendedAt: number) => {
    inFlight++;
    const measured = index >= firstMeasured;
    if (measured) pendingMeasured.add(index);
    const settle = (outcome: Outcome) => {
      inFlight--;
      if (measured && pendingMeasured.delete(index)) {
        recorder ??= options.recorder(measuredStart);
        recorder.record(intendedAt, now(), outcome);
      }
      // Between two timer ticks, completions are the moments the event loop is free to send what became due.
      pump();
    };
    operation(index).then(settle, (error: unknown) => settle({ ok: false, kind: errorKind(error) }));
  };

  /** Sends everything that is due; called by the pacer and after every completion. */
  const pump = () => {
    const t = now();
    if (stoppedAt !== undefined) return;
    if (t >= measuredStart && !recorder) recorder = options.recorder(measuredStart);
    const due = Math.min(total, Math.floor((t - start) / intervalMs) + 1);
    while (next < due) {
      launch(next, start + next * intervalMs);
      next++;
    }
  };

  const pacer = startPacer({
    nextDueAt: () => (next < total ? start + next * intervalMs : undefined),
    fire: pump,
    now,
  });
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      pump();
      const t = now();
      recorder?.tick(t);
      onTick?.({
        phase: t < measuredStart ? "warmup" : "measure",
        elapsedMs: t - start,
        sent: next,
        inFlight,
        recorder,
      });
      if (next >= total || signal?.aborted) {
        stoppedAt = Math.min(t, end);
        clearInterval(timer);
        pacer.stop();
        resolve();
      }
    }, 20); // housekeeping only: sends are paced by the pacer
    pump();
  });

  const interrupted = signal?.aborted === true;
  const drainDeadline = now() + (interrupted ? Math.min(drainMs, 2000) : drainMs);
  while (pendingMeasured.size > 0 && now() < drainDeadline) {
    onTick?.({ phase: "drain", elapsedMs: now() - start, sent: next, inFlight, recorder });
    await Bun.sleep(5);
  }
  recorder ??= options.recorder(measuredStart);
  const unfinished = pendingMeasured.size;
  // Whatever never answered counts as an error whose latency is at least the whole wait.
  for (const index of pendingMeasured)
    recorder.record(start + index * intervalMs, now(), { ok: false, kind: "unfinished" });
  pendingMeasured.clear();
  recorder.finish(now());
  return {
    recorder,
    sent: Math.max(0, next - firstMeasured),
    measuredMs: Math.max(0, (stoppedAt ?? end) - measuredStart),
    interrupted,
    unfinished,
  };
}

export function errorKind(error: unknown): string {
  if (error && typeof error === "object" && "kind" in error && typeof error.kind === "string") return error.kind;
  return "exception";
}
