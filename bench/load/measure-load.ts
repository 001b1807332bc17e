/**
 * Runs one operation under the load model the flags chose (open, closed or
 * step) while sampling CPU/RSS of the generator and of the target, and turns
 * the recording into parts of the result.
 */
import { createRecorder } from "../measure/recorder";
import { createResourceSampler } from "../measure/resources";
import type { BenchOptions } from "../options";
import type { Progress } from "../progress";
import { type PartResult, percentiles } from "../result";
import { runClosedLoop } from "./closed-loop";
import { type LoadRun, type Operation, runOpenLoop } from "./open-loop";

export interface MeasureRequest {
  name: string;
  unit: string;
  operation: Operation;
  options: BenchOptions;
  progress: Progress;
  signal: AbortSignal;
  /** Root pid of the system under test, when known. */
  targetPid?: number;
  /** Called between warm-up and the measured phase (the warm-up then runs on its own, and drains first). */
  beforeMeasure?: () => Promise<void>;
  /** Figures to add once the measured phase has drained (e.g. the app's own percentiles). */
  afterMeasure?: () => Promise<Record<string, number | string>>;
  /** Units of work one operation does (a pipeline of 100 writes: 100); throughput is multiplied by it. */
  unitsPerOperation?: number;
  /**
   * How long the open loop waits for the measured operations still running after the last send, before
   * counting them "unfinished" (default: --timeout + 1 s). An operation that waits for a task's end is bounded
   * by --wait + --timeout: a shorter drain counts the LLM's own slow tail as the app's failures.
   */
  drainMs?: number;
}

/** The drain of operations that wait for a task's end (GET /task/:id?wait=): their own bound, and a second. */
export const taskDrainMs = (options: BenchOptions) => options.waitMs + options.timeoutMs + 1000;

export interface MeasureOutcome {
  parts: PartResult[];
  step?: { p99TargetMs: number; highestHeld: number | undefined };
}

/** One measured part in the given mode (step mode calls it once per rate). */
export async function measurePart(
  request: MeasureRequest,
  mode: "open" | "closed",
  rate: number,
  name: string,
  concurrency = request.options.concurrency,
): Promise<PartResult> {
  const { options, progress, signal, operation } = request;
  const generator = createResourceSampler(process.pid, { withChildren: false });
  const target = request.targetPid === undefined ? undefined : createResourceSampler(request.targetPid);
  const onTick: Parameters<typeof runOpenLoop>[0]["onTick"] = (state) => progress.update(name, state);
  let warmupMs = options.warmupMs;
  if (request.beforeMeasure) {
    if (warmupMs > 0 && mode === "open") {
      await runOpenLoop({
        rate,
        durationMs: warmupMs,
        warmupMs: 0,
        operation,
        recorder: createRecorder,
        signal,
        onTick,
      });
    }
    await request.beforeMeasure();
    warmupMs = 0;
  }
  const recorder = (start: number) => {
    generator.start();
    target?.start();
    return createRecorder(start);
  };
  const sampling = setInterval(() => {
    generator.sample();
    target?.sample();
  }, 1000);
  let run: LoadRun;
  try {
    run =
      mode === "open"
        ? await runOpenLoop({
            rate,
            durationMs: options.durationMs,
            warmupMs,
            operation,
            recorder,
            signal,
            onTick,
            drainMs: request.drainMs ?? options.timeoutMs + 1000,
          })
        : await runClosedLoop({
            concurrency,
            durationMs: options.durationMs,
            warmupMs,
            operation,
            recorder,
            signal,
            onTick,
          });
  } finally {
    clearInterval(sampling);
  }
  const generatorUse = generator.summary();
  const targetUse = target?.summary();
  let extra = request.afterMeasure && !signal.aborted ? await request.afterMeasure() : undefined;
  const r = run.recorder;
  const seconds = run.measuredMs / 1000;
  if (targetUse && seconds > 0 && r.completed > 0) {
    // CPU of the whole target (app and worker processes) per unit that completed: CPU-s/s over units/s.
    const perUnit = ((targetUse.cpuPercent / 100) * 1000) / (r.completed / seconds);
    extra = { ...extra, [`target_cpu_ms_per_${request.unit.replace(/s$/, "")}`]: Math.round(perUnit * 1000) / 1000 };
  }
  return {
    name,
    mode,
    ...(mode === "open" ? { rate } : { concurrency }),
    durationS: Math.round(seconds * 1000) / 1000,
    sent: run.sent,
    completed: r.completed,
    errors: { ...r.errors },
    throughput: seconds > 0 ? Math.round(((r.completed * (request.unitsPerOperation ?? 1)) / seconds) * 10) / 10 : 0,
    unit: request.unit,
    latencyMs: percentiles(r.latency),
    serviceMs: percentiles(r.service),
    ...(mode === "open" ? { sendLagMs: percentiles(r.sendLag) } : {}),
    histogram: r.encode().latency,
    timeline: [...r.timeline],
    resources: { ...(generatorUse ? { generator: generatorUse } : {}), ...(targetUse ? { target: targetUse } : {}) },
    ...(extra ? { extra } : {}),
    interrupted: run.interrupted,
  };
}

/** A step held when nearly every request succeeded at nearly the asked rate within the P99 target. */
export function stepHeld(part: PartResult, p99TargetMs: number): boolean {
  const errors = Object.values(part.errors).reduce((a, b) => a + b, 0);
  const rate = part.rate ?? 0;
  return (
    (part.latencyMs?.p99 ?? Number.POSITIVE_INFINITY) <= p99TargetMs &&
    errors <= part.sent * 0.001 &&
    part.throughput >= rate * 0.97
  );
}

export async function measureLoad(request: MeasureRequest): Promise<MeasureOutcome> {
  const { options, progress, signal } = request;
  if (options.mode !== "step") {
    return { parts: [await measurePart(request, options.mode, options.rate, request.name)] };
  }
  const parts: PartResult[] = [];
  let highestHeld: number | undefined;
  // Two failing steps in a row end the search: one bad second on a shared box should not.
  let failures = 0;
  for (let rate = options.steps.start; rate <= options.steps.max && !signal.aborted; rate += options.steps.increment) {
    const part = await measurePart(request, "open", rate, `${request.name} @ ${rate}/s`);
    parts.push(part);
    const held = stepHeld(part, options.p99TargetMs);
    progress.note(`  ${rate}/s: p99 ${part.latencyMs?.p99} ms, ${part.throughput}/s → ${held ? "held" : "NOT held"}`);
    if (held) {
      highestHeld = rate;
      failures = 0;
    } else if (++failures >= 2) break;
  }
  return { parts, step: { p99TargetMs: options.p99TargetMs, highestHeld } };
}
