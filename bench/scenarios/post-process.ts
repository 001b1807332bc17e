/**
 * The operation `http`, `null` and the validate-only baseline share: one
 * POST /process with precomputed bytes on the raw keep-alive pool; 202 is
 * success, anything else an error of kind http_<status>.
 */
import { buildRequest, createHttpPool, type HttpPool } from "../http/raw-client";
import type { Operation } from "../load/open-loop";
import type { BenchOptions } from "../options";

export function processBody(options: BenchOptions, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ text: options.text, task_type: options.taskType, ...extra });
}

export function postProcessOperation(url: string, options: BenchOptions): { operation: Operation; pool: HttpPool } {
  const base = new URL(url);
  const pool = createHttpPool({ url, maxConnections: options.connections, timeoutMs: options.timeoutMs });
  const bytes = buildRequest("POST", base, "/process", processBody(options), { "Content-Type": "application/json" });
  const operation: Operation = async () => {
    const response = await pool.request(bytes);
    return response.status === 202
      ? { ok: true, sentAt: response.sentAt }
      : { ok: false, kind: `http_${response.status}`, sentAt: response.sentAt };
  };
  return { operation, pool };
}
