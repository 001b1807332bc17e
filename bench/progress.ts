/**
 * The live progress line on stderr: rewritten in place on a terminal, one
 * line every 5 s otherwise (CI logs), nothing with --quiet.
 */
import type { LoadState } from "./load/open-loop";

export interface Progress {
  update(label: string, state: LoadState): void;
  /** A line of its own (setup steps, results of a step). */
  note(line: string): void;
  done(): void;
}

export function createProgress(options: { quiet: boolean; stream?: NodeJS.WriteStream }): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  let lastAt = 0;
  let dirty = false;
  const clear = () => {
    if (dirty) stream.write("\r\x1b[K");
    dirty = false;
  };
  return {
    update(label, state) {
      if (options.quiet) return;
      const now = performance.now();
      if (now - lastAt < (tty ? 250 : 5000)) return;
      lastAt = now;
      const recorder = state.recorder;
      const lastSecond = recorder?.timeline.at(-1);
      const errors = recorder ? Object.values(recorder.errors).reduce((a, b) => a + b, 0) : 0;
      const line =
        `[${label}] ${state.phase} ${(state.elapsedMs / 1000).toFixed(1)}s  sent ${state.sent}  ` +
        `done ${recorder?.completed ?? 0}  in flight ${state.inFlight}  errors ${errors}` +
        (lastSecond ? `  last second: ${lastSecond.completed}/s p99 ${lastSecond.p99} ms` : "");
      if (tty) {
        stream.write(`\r\x1b[K${line}`);
        dirty = true;
      } else stream.write(`${line}\n`);
    },
    note(line) {
      if (options.quiet) return;
      clear();
      stream.write(`${line}\n`);
    },
    done: clear,
  };
}
