/**
 * The contract every scenario implements. A scenario owns its target (it
 * decides which roles the app runs, or which baseline it measures) and its
 * operation; the shared harness (load model, histograms, resources, output)
 * does the rest. Register a new one in ./index.ts.
 */
import type { CacheQualityReport } from "../cache-quality/report";
import type { ConsoleReport } from "../console/analysis";
import type { MeasureOutcome } from "../load/measure-load";
import type { BenchOptions } from "../options";
import type { Progress } from "../progress";

export interface ScenarioContext {
  options: BenchOptions;
  progress: Progress;
  /** Aborted by Ctrl-C: stop sending, drain briefly, return what was measured. */
  signal: AbortSignal;
}

export interface ScenarioRun extends MeasureOutcome {
  /** What was measured, for the summary and the report. */
  target: string;
  cacheQuality?: CacheQualityReport;
  /** `console`: the page's samples and their summary. */
  console?: ConsoleReport;
}

export interface Scenario {
  name: string;
  /** One line for `bun bench --help`. */
  description: string;
  run(context: ScenarioContext): Promise<ScenarioRun>;
}

/** A scenario whose feature has not landed yet: `bun bench <name>` says so and exits 2 rather than invent numbers. */
export interface PendingScenario {
  name: string;
  description: string;
  arrivesWith: { issue: number; feature: string };
  /** What to run meanwhile, when the feature exists but its scenario does not yet. */
  meanwhile?: string;
}

export type ScenarioEntry = Scenario | PendingScenario;

export const isPending = (entry: ScenarioEntry): entry is PendingScenario => "arrivesWith" in entry;
