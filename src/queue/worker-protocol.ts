/** Messages between the supervisor (main process) and its worker processes, over Bun's IPC channel. */
export type FromWorker =
  | { type: "ready"; worker_id: string; pid: number }
  | { type: "recycle"; reason: "max_jobs" | "memory" | "operator"; processed: number; rss_mb: number };

export type ToWorker = { type: "drain"; timeout_ms: number };
