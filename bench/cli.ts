/**
 * `bun bench`: parses the command, runs a scenario (or compare/report), prints
 * the summary and writes the JSON and HTML report. Ctrl-C aborts the run
 * cleanly (partial results are still written); a second Ctrl-C exits at once.
 */
import { helpText } from "./help";
import { describeMachine } from "./machine";
import { MissingServiceError, parseCommand, UsageError } from "./options";
import { createProgress } from "./progress";
import { loadResult, renderComparison } from "./report/compare";
import { renderSummary } from "./report/summary";
import { writeResult } from "./report/write";
import { RESULT_VERSION, type RunResult } from "./result";
import { findScenario, SCENARIOS } from "./scenarios";
import { isPending } from "./scenarios/scenario";

async function main(argv: string[]): Promise<number> {
  const command = parseCommand(argv);
  if (command.help) {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  const [name = "http", ...rest] = command.positionals;
  if (name === "compare") {
    if (rest.length !== 2) throw new UsageError("compare needs two result files: bun bench compare a.json b.json");
    const [a, b] = rest as [string, string];
    process.stdout.write(`${renderComparison(loadResult(a), loadResult(b), a, b)}\n`);
    return 0;
  }
  if (name === "report") {
    if (rest.length !== 1) throw new UsageError("report needs one result file: bun bench report result.json");
    const result = loadResult(rest[0] as string);
    const paths = writeResult(result, command.options.outDir);
    process.stdout.write(`report: ${paths.html}\n`);
    return 0;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}" after the scenario`);
  const entry = findScenario(name);
  if (!entry) {
    throw new UsageError(
      `unknown scenario "${name}": expected one of ${SCENARIOS.map((s) => s.name).join(", ")}, compare or report`,
    );
  }
  if (isPending(entry)) {
    throw new UsageError(
      `scenario "${entry.name}" is not available yet: arrives with issue ${entry.arrivesWith.issue} (${entry.arrivesWith.feature})` +
        (entry.meanwhile ? `; meanwhile: ${entry.meanwhile}` : ""),
    );
  }

  const { options } = command;
  const progress = createProgress({ quiet: options.quiet });
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    progress.note("interrupted: stopping the load, writing partial results (Ctrl-C again to quit at once)");
    abort.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  try {
    const run = await entry.run({ options, progress, signal: abort.signal });
    progress.done();
    const result: RunResult = {
      version: RESULT_VERSION,
      scenario: entry.name,
      ...(options.name ? { label: options.name } : {}),
      command: `bun bench ${argv.join(" ")}`.trim(),
      startedAt,
      machine,
      target: run.target,
      options: { ...options },
      parts: run.parts,
      ...(run.step ? { step: run.step } : {}),
      ...(run.cacheQuality ? { cacheQuality: run.cacheQuality } : {}),
      ...(run.console ? { console: run.console } : {}),
      interrupted: abort.signal.aborted,
    };
    process.stdout.write(`${renderSummary(result)}\n`);
    const paths = writeResult(result, options.outDir);
    process.stdout.write(`results: ${paths.json}\nreport:  ${paths.html}\n`);
    return abort.signal.aborted ? 130 : 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof UsageError || error instanceof MissingServiceError) {
        process.stderr.write(`bun bench: ${error.message}\n`);
        process.exit(error.exitCode);
      }
      process.stderr.write(`bun bench: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}

export { main };
