/**
 * What one measured run records: HDR histograms (the project's µs layout,
 * 3 significant digits) of the latency from the INTENDED send time, of the
 * service time (from when the request really left), and of the generator's
 * send lag; errors by kind; and a per-second timeline for the report.
 */
import { createDurationHistogram, encodeHistogram, type Histogram, recordMs } from "../../src/metrics/histogram";

export interface Outcome {
  ok: boolean;
  /** Error kind when !ok: "http_503", "timeout", "connect", "task_failure"... */
  kind?: string;
  /** performance.now() when the operation's first bytes left; absent if never sent. */
  sentAt?: number;
}

export interface TimelinePoint {
  /** Seconds since the measured phase began. */
  second: number;
  completed: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

export interface Recorder {
  /** Records one operation that was due at `intendedAt` and ended at `endedAt` (performance.now() ms). */
  record(intendedAt: number, endedAt: number, outcome: Outcome): void;
  /** Closes the current timeline second(s) up to `now`. */
  tick(now: number): void;
  /**
   * The run is over: closes the seconds up to `now` and the last, partial one if anything happened in it.
   * Without it, a run that ended at 2,999 ms left its third second (where a stall's answers landed) out of
   * the timeline.
   */
  finish(now: number): void;
  readonly latency: Histogram;
  readonly service: Histogram;
  readonly sendLag: Histogram;
  readonly completed: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly timeline: readonly TimelinePoint[];
  encode(): { latency: string; service: string; sendLag: string };
}

const toMs = (us: number) => Math.round(us) / 1000;

export function createRecorder(startedAt: number): Recorder {
  const latency = createDurationHistogram();
  const service = createDurationHistogram();
  const sendLag = createDurationHistogram();
  const second = createDurationHistogram();
  const errors: Record<string, number> = {};
  const timeline: TimelinePoint[] = [];
  let completed = 0;
  let secondCompleted = 0;
  let secondErrors = 0;
  let secondIndex = 0;

  const closeSecond = () => {
    const empty = second.totalCount === 0;
    timeline.push({
      second: secondIndex + 1,
      completed: secondCompleted,
      errors: secondErrors,
      p50: empty ? 0 : toMs(second.getValueAtPercentile(50)),
      p99: empty ? 0 : toMs(second.getValueAtPercentile(99)),
      max: empty ? 0 : toMs(second.maxValue),
    });
    second.reset();
    secondCompleted = 0;
    secondErrors = 0;
    secondIndex++;
  };

  const tick = (now: number) => {
    while (now - startedAt >= (secondIndex + 1) * 1000) closeSecond();
  };

  return {
    record(intendedAt, endedAt, outcome) {
      tick(endedAt);
      // Errors count in the latency too: a request that timed out after 5 s was a 5 s wait for its caller.
      const ms = endedAt - intendedAt;
      recordMs(latency, ms);
      recordMs(second, ms);
      if (outcome.sentAt !== undefined) {
        recordMs(service, endedAt - outcome.sentAt);
        recordMs(sendLag, Math.max(0, outcome.sentAt - intendedAt));
      }
      if (outcome.ok) {
        completed++;
        secondCompleted++;
      } else {
        const kind = outcome.kind ?? "error";
        errors[kind] = (errors[kind] ?? 0) + 1;
        secondErrors++;
      }
    },
    tick,
    finish(now) {
      tick(now);
      if (second.totalCount > 0 || secondErrors > 0) closeSecond();
    },
    latency,
    service,
    sendLag,
    get completed() {
      return completed;
    },
    errors,
    timeline,
    encode: () => ({
      latency: encodeHistogram(latency),
      service: encodeHistogram(service),
      sendLag: encodeHistogram(sendLag),
    }),
  };
}
