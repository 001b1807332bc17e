/**
 * Node's `TracingChannel#hasSubscribers` (Node 22, 20.13) for runtimes that
 * lack it: Bun 1.4.5's tracing channels have no such property.
 *
 * ioredis 6 traces every command through `node:diagnostics_channel` unless
 * `channel.hasSubscribers === false` (ioredis built/tracing.js,
 * `shouldTrace`). Without the property, it reads `undefined`, so every
 * command, pipeline and MULTI pays for the tracing nobody listens to: its
 * arguments stringified and matched against a dozen regular expressions
 * (`sanitizeArgs`), a context object, and a wrapping promise with its own
 * `catch`. In a worker process with 2,400 jobs in flight that was 8.7 % of
 * the process's CPU profile (BENCHMARKS.md, issue 18 §1).
 *
 * The getter answers as Node's does: true when any of the five channels has a
 * subscriber, so an APM that subscribes still gets every trace. It is only
 * defined where the runtime has none of its own.
 */
import diagnostics from "node:diagnostics_channel";

type Channels = Record<"start" | "end" | "asyncStart" | "asyncEnd" | "error", { hasSubscribers: boolean }>;

/** Adds the getter to the runtime's TracingChannel prototype when it is missing; true when it did. */
export function polyfillTracingHasSubscribers(): boolean {
  if (typeof diagnostics.tracingChannel !== "function") return false;
  const prototype = Object.getPrototypeOf(diagnostics.tracingChannel("ai-eventstream:probe")) as object;
  if ("hasSubscribers" in prototype) return false;
  Object.defineProperty(prototype, "hasSubscribers", {
    configurable: true,
    get(this: Channels) {
      return (
        this.start.hasSubscribers ||
        this.end.hasSubscribers ||
        this.asyncStart.hasSubscribers ||
        this.asyncEnd.hasSubscribers ||
        this.error.hasSubscribers
      );
    },
  });
  return true;
}

polyfillTracingHasSubscribers();
