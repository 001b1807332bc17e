/**
 * A server that does nothing: every request gets a small 202 at once. The
 * latency measured against it is the harness's own cost (plus loopback and
 * Bun.serve), the figure behind "the harness adds ≤ 1 ms to P99".
 *
 * A stall window makes it hold every POST that arrives during
 * [stallAfterMs, stallAfterMs + stallMs) after the first POST until the
 * window ends: the fault the open-loop test needs. Counted from the first
 * POST, not from the start: a start slower than stallAfterMs (a loaded box)
 * put the whole window before the load, behind the readiness probe.
 *
 *   bun bench/targets/null-server.ts --port 8010 [--stall-after 2000 --stall 1000]
 */
import { parseArgs } from "node:util";

export interface NullServerOptions {
  port?: number;
  /** ms after the first POST when the stall begins; no stall when undefined. */
  stallAfterMs?: number;
  stallMs?: number;
}

export interface NullServer {
  readonly url: string;
  readonly requests: number;
  stop(): Promise<void>;
}

const BODY = '{"task_id":"0","status":"PENDING","message":"null server"}';

export function startNullServer(options: NullServerOptions = {}): NullServer {
  let startedAt: number | undefined;
  const { stallAfterMs, stallMs = 0 } = options;
  let requests = 0;
  const server = Bun.serve({
    port: options.port ?? 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      requests++;
      if (stallAfterMs !== undefined && request.method === "POST") {
        startedAt ??= performance.now();
        const elapsed = performance.now() - startedAt;
        const until = stallAfterMs + stallMs;
        if (elapsed >= stallAfterMs && elapsed < until) await Bun.sleep(until - elapsed);
      }
      return new Response(BODY, { status: 202, headers: { "content-type": "application/json" } });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    get requests() {
      return requests;
    },
    stop: () => server.stop(true),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8010" },
      "stall-after": { type: "string" },
      stall: { type: "string" },
    },
  });
  const server = startNullServer({
    port: Number(values.port),
    ...(values["stall-after"] ? { stallAfterMs: Number(values["stall-after"]) } : {}),
    ...(values.stall ? { stallMs: Number(values.stall) } : {}),
  });
  process.stdout.write(`null server on ${server.url}\n`);
  for (const signal of ["SIGTERM", "SIGINT"] as const)
    process.once(signal, () => void server.stop().then(() => process.exit(0)));
}
