import { describe, expect, test } from "bun:test";
import { buildRequest, createHttpPool, TransportError } from "../../bench/http/raw-client";

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
