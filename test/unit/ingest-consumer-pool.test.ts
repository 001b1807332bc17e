import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEventBus, type EventMap } from "../../src/events";
import { createConsumerPool } from "../../src/ingest/consumer-pool";
import { createLogger } from "../../src/log";

describe("the consumer pool", () => {
  test("a consumer thread that dies is restarted and reported; its stats and lag reach the main thread", async () => {
    const marker = join(tmpdir(), `ingest-flaky-${process.pid}-${Date.now()}`);
    const bus = createEventBus();
    const states: EventMap["ingest.thread"][] = [];
    const batches: EventMap["ingest.batch"][] = [];
    bus.on("ingest.thread", (e) => states.push(e));
    bus.on("ingest.batch", (e) => batches.push(e));
    const pool = createConsumerPool({
      threads: 1,
      entry: join(import.meta.dir, "fixtures", "ingest-flaky-thread.ts"),
      bus,
      logger: createLogger({ level: "silent" }),
      env: { MARKER_FILE: marker },
      startTimeoutMs: 10_000,
    });
    try {
      await pool.start();
      expect(states.map((s) => s.state)).toEqual(["died", "ready"]);
      const deadline = Date.now() + 5000;
      while (batches.length === 0 && Date.now() < deadline) await Bun.sleep(10);
      expect(batches[0]).toMatchObject({ consumed: 3, enqueued: 2, dead_lettered: 1 });
      expect(pool.status()).toMatchObject({ threads: 1, alive: 1, restarts: 1, paused: undefined });
      expect(pool.status().lags).toEqual([{ topic: "t", partition: 0, lag: 5, committed: "10", at: 1 }]);
      pool.pause("queue_high_watermark");
      expect(pool.status().paused).toBe("queue_high_watermark");
    } finally {
      await pool.stop(5000);
      rmSync(marker, { force: true });
    }
    expect(pool.status().alive).toBe(0);
  });
});
