/**
 * What `e2e`, `cache` and `kafka` share: a connection pool for operations
 * that hold a connection for a task's whole life, and the wait for a task's
 * end (GET /task/:id?wait=) turned into the harness's outcome.
 */
import { buildRequest, createHttpPool, type HttpPool } from "../http/raw-client";
import type { Outcome } from "../measure/recorder";
import type { BenchOptions } from "../options";

const decoder = new TextDecoder();

/** Each task holds a connection for its whole LLM latency: more connections than for `http`. */
export function taskPool(url: string, options: BenchOptions): HttpPool {
  return createHttpPool({
    url,
    maxConnections: Math.max(options.connections, 256),
    timeoutMs: options.waitMs + options.timeoutMs,
  });
}

/**
 * GET /task/:id?wait= and the outcome of its answer: SUCCESS is done, another
 * status or HTTP code an error of that kind. A 404 is flagged `notFound`, so a
 * caller that expects the task to appear (a Kafka event not consumed yet) can ask again.
 */
export async function awaitTask(
  pool: HttpPool,
  base: URL,
  taskId: string,
  options: { waitMs: number; sentAt: number },
): Promise<Outcome & { notFound?: boolean }> {
  const { waitMs, sentAt } = options;
  const answer = await pool.request(buildRequest("GET", base, `/task/${encodeURIComponent(taskId)}?wait=${waitMs}`));
  if (answer.status === 404) return { ok: false, kind: "http_404", sentAt, notFound: true };
  if (answer.status !== 200) return { ok: false, kind: `http_${answer.status}`, sentAt };
  const { status } = JSON.parse(decoder.decode(answer.body)) as { status: string };
  return status === "SUCCESS" ? { ok: true, sentAt } : { ok: false, kind: `task_${status.toLowerCase()}`, sentAt };
}

/** POST /process with prepared bytes, then wait for the task's end. */
export async function postAndAwait(pool: HttpPool, base: URL, post: Uint8Array, waitMs: number): Promise<Outcome> {
  const accepted = await pool.request(post);
  if (accepted.status !== 202) return { ok: false, kind: `http_${accepted.status}`, sentAt: accepted.sentAt };
  const { task_id } = JSON.parse(decoder.decode(accepted.body)) as { task_id: string };
  const { notFound: _, ...outcome } = await awaitTask(pool, base, task_id, { waitMs, sentAt: accepted.sentAt });
  return outcome;
}
