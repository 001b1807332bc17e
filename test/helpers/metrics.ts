/** Metrics events as the stages emit them, for the metrics tests and their child processes. */
import type { EventBus } from "../../src/events";

/** A task that succeeded: one sample in each of the latency and processing histograms. */
export function succeed(bus: EventBus, latency_ms: number, processing_ms = latency_ms, from_cache = false, tokens = 1) {
  bus.emit("task.succeeded", {
    task_id: "t",
    queue: "ai_processing",
    task_type: "summarization",
    latency_ms,
    processing_ms,
    from_cache,
    tokens,
  });
}
