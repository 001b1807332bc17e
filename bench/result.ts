/**
 * The shape of a run's JSON (bench/results/*.json): what `compare` and the
 * HTML report read. One run has one or more parts (a baseline has several
 * ceilings; a step run has one part per rate).
 */

import type { Histogram } from "../src/metrics/histogram";
import type { CacheQualityReport } from "./cache-quality/report";
import type { ConsoleReport } from "./console/analysis";
import type { TimelinePoint } from "./measure/recorder";
import type { ResourceSummary } from "./measure/resources";

export const RESULT_VERSION = 1;

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  count: number;
}

export interface PartResult {
  /** Unique within the run; `compare` pairs parts by name. */
  name: string;
  /** open: constant rate, latency from the intended send time; closed: back to back; fixed: a scripted count. */
  mode: "open" | "closed" | "fixed";
  /** Target rate (open) or callers (closed). */
  rate?: number;
  concurrency?: number;
  durationS: number;
  sent: number;
  completed: number;
  errors: Record<string, number>;
  /** Completed operations per second of the measured phase. */
  throughput: number;
  /** Unit of `throughput`: requests, tasks, commands, messages. */
  unit: string;
  latencyMs?: Percentiles;
  /** From the moment the bytes left (what a closed-loop tool reports). */
  serviceMs?: Percentiles;
  /** How late the generator sent, behind the schedule. */
  sendLagMs?: Percentiles;
  /** HDR histogram of latencyMs, compressed base64 (µs), for re-analysis and merging. */
  histogram?: string;
  timeline: TimelinePoint[];
  resources: { generator?: ResourceSummary; target?: ResourceSummary };
  /** Scenario-specific figures, e.g. the app's own percentiles. */
  extra?: Record<string, number | string>;
  interrupted: boolean;
}

export interface RunResult {
  version: typeof RESULT_VERSION;
  scenario: string;
  label?: string;
  command: string;
  startedAt: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; bun: string; loadAvg: number[] };
  target: string;
  options: Record<string, unknown>;
  parts: PartResult[];
  /** Step mode: the highest rate whose P99 stayed under the target. */
  step?: { p99TargetMs: number; highestHeld: number | undefined };
  /** `cache-quality`: rates per kind, the threshold sweep, the calibration. */
  cacheQuality?: CacheQualityReport;
  /** `console`: the operator console's main-thread busy share, heap and DOM nodes over the run. */
  console?: ConsoleReport;
  interrupted: boolean;
}

const toMs = (us: number) => Math.round(us) / 1000;

export function percentiles(histogram: Histogram): Percentiles {
  const count = histogram.totalCount;
  if (count === 0) return { p50: 0, p95: 0, p99: 0, p999: 0, max: 0, mean: 0, count: 0 };
  return {
    p50: toMs(histogram.getValueAtPercentile(50)),
    p95: toMs(histogram.getValueAtPercentile(95)),
    p99: toMs(histogram.getValueAtPercentile(99)),
    p999: toMs(histogram.getValueAtPercentile(99.9)),
    max: toMs(histogram.maxValue),
    mean: Math.round(histogram.mean) / 1000,
    count,
  };
}
