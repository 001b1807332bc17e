import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config";

describe("Kafka ingestion settings", () => {
  test("defaults: chunks of 500, watermarks 20000/10000, a 30 s rate-limit pause, ids remembered 7 days", () => {
    expect(loadConfig({}).kafka).toMatchObject({
      batchSize: 500,
      partitionsConcurrently: 3,
      queueHighWatermark: 20_000,
      queueLowWatermark: 10_000,
      rateLimitPauseMs: 30_000,
      dedupTtlSeconds: 604_800,
      sessionTimeoutMs: 30_000,
      resultLingerMs: 20,
    });
  });

  test("a low watermark at or above the high one stops the process, naming both variables", () => {
    expect(() => loadConfig({ KAFKA_QUEUE_HIGH_WATERMARK: "100", KAFKA_QUEUE_LOW_WATERMARK: "100" })).toThrow(
      /KAFKA_QUEUE_LOW_WATERMARK must be below KAFKA_QUEUE_HIGH_WATERMARK/,
    );
  });

  test("every invalid value is reported at once, naming the variable and what it accepts", () => {
    try {
      loadConfig({ KAFKA_BATCH_SIZE: "0", KAFKA_SESSION_TIMEOUT_MS: "1000" });
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toContain('KAFKA_BATCH_SIZE="0" is not valid: expected an integer 1..10000');
      expect(message).toContain('KAFKA_SESSION_TIMEOUT_MS="1000" is not valid: expected an integer 6000..300000');
    }
  });
});
