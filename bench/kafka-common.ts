/** Small helpers the Kafka benchmark scenarios share. */
import { Kafka, logLevel } from "kafkajs";

export function kafkaClient(brokers: readonly string[], clientId = "bench-kafka"): Kafka {
  return new Kafka({ clientId, brokers: [...brokers], logLevel: logLevel.NOTHING });
}

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/**
 * Waits until the app's consumer group has settled: every consumer thread has
 * joined and the topic's partitions are assigned once. /health is green as
 * soon as the threads run, but their joins still rebalance the group for a
 * few seconds, which a measurement would otherwise count as latency. An app
 * whose /health does not say (another version) is taken as settled.
 */
export async function waitForConsumerGroup(appUrl: string, partitions: number, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    async () => {
      const response = await fetch(`${appUrl}/health`).catch(() => undefined);
      if (!response) return false;
      const body = (await response.json().catch(() => ({}))) as {
        checks?: { kafka_consumer?: { info?: { assigned_partitions?: number[] } } };
      };
      const assigned = body.checks?.kafka_consumer?.info?.assigned_partitions;
      if (!assigned) return response.ok;
      const total = assigned.reduce((sum, n) => sum + n, 0);
      const everyThreadHasWork = assigned.length > partitions || assigned.every((n) => n > 0);
      return assigned.every((n) => n >= 0) && total === partitions && everyThreadHasWork;
    },
    timeoutMs,
    `the app's consumer group to settle (${partitions} partitions assigned)`,
  );
}
