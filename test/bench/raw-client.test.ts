import { describe, expect, test } from "bun:test";
import { buildRequest, createHttpPool, IDLE_CLOSE_MS, TransportError } from "../../bench/http/raw-client";

/** A port that was just listening and is now closed: connecting to it is refused. */
function refusedUrl(): string {
  const server = Bun.serve({ port: 0, fetch: () => new Response() });
  const url = `http://127.0.0.1:${server.port}`;
  server.stop(true);
  return url;
}

describe("load generator's HTTP pool against a target that refuses connections", () => {
  test("every request of a burst larger than the pool fails with a connect error, and no connection is left", async () => {
    const url = refusedUrl();
    const pool = createHttpPool({ url, maxConnections: 16, timeoutMs: 5000 });
    const bytes = buildRequest("GET", new URL(url), "/");
    const started = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, () =>
        pool.request(bytes).then(
          () => "answered",
          (error: unknown) => (error instanceof TransportError ? error.kind : String(error)),
        ),
      ),
    );
    const elapsed = performance.now() - started;
    pool.close();
    expect(outcomes.filter((kind) => kind === "connect")).toHaveLength(200);
    expect(pool.connections).toBe(0);
    expect(pool.queued).toBe(0);
    // A refused connect answers in well under a millisecond; seconds would mean requests waited on retries.
    expect(elapsed).toBeLessThan(2000);
  });

  test("requests that arrive while earlier connects are still failing end too", async () => {
    const url = refusedUrl();
    const pool = createHttpPool({ url, maxConnections: 4, timeoutMs: 5000 });
    const bytes = buildRequest("GET", new URL(url), "/");
    const results: Promise<string>[] = [];
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 5; i++)
        results.push(
          pool.request(bytes).then(
            () => "answered",
            (error: TransportError) => error.kind,
          ),
        );
      await Bun.sleep(1);
    }
    const outcomes = await Promise.all(results);
    pool.close();
    expect(new Set(outcomes)).toEqual(new Set(["connect"]));
    expect(outcomes).toHaveLength(100);
  });
});

describe("load generator's HTTP pool: idle connections", () => {
  test("a connection idle longer than IDLE_CLOSE_MS is closed by the pool, not left for the server to close under a request", async () => {
    let clock = 0;
    const server = Bun.serve({ port: 0, fetch: () => new Response("ok") });
    const url = `http://127.0.0.1:${server.port}`;
    const pool = createHttpPool({ url, maxConnections: 8, timeoutMs: 5000, now: () => clock });
    const bytes = buildRequest("GET", new URL(url), "/");
    try {
      const answers = await Promise.all(Array.from({ length: 4 }, () => pool.request(bytes)));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(pool.connections).toBe(4);
      // Still fresh: kept for reuse.
      clock += IDLE_CLOSE_MS - 1;
      await Bun.sleep(250);
      expect(pool.connections).toBe(4);
      // Past the idle limit: closed by the next sweep (every 100 ms).
      clock += 2;
      await Bun.sleep(250);
      expect(pool.connections).toBe(0);
      // The pool opens a new connection for the next request, and nothing failed.
      const again = await pool.request(bytes);
      expect(again.status).toBe(200);
      expect(pool.connections).toBe(1);
    } finally {
      pool.close();
      server.stop(true);
    }
  });
});
