/**
 * What one wake-up of an idle process costs this machine in CPU, the floor
 * under the low-rate CPU per task (BENCHMARKS.md, "Low rate"): a Redis PING
 * after 10 ms of idleness, against PINGs back to back, and a bare 10 ms timer.
 * Figures from process.cpuUsage() (user + system) of this process.
 *
 *   bun bench/wakeup-cost.ts [--redis-url redis://127.0.0.1:6379/6] [--rounds 3]
 */
import { parseArgs } from "node:util";
import Redis from "ioredis";

const { values } = parseArgs({
  options: {
    "redis-url": { type: "string", default: "redis://127.0.0.1:6379/6" },
    rounds: { type: "string", default: "3" },
  },
});
const redis = new Redis(values["redis-url"], { maxRetriesPerRequest: 1, connectTimeout: 2000 });
redis.on("error", () => {});
try {
  await redis.ping();
} catch (error) {
  console.error(`cannot reach Redis at ${values["redis-url"]} (${String(error)}); start it with: bun run services:up`);
  process.exit(2);
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
/** CPU ms per iteration of `n` iterations of: an optional PING, then a sleep of `gapMs`. */
async function perIteration(n: number, gapMs: number, ping: boolean): Promise<number> {
  const start = cpuMs();
  for (let i = 0; i < n; i++) {
    if (ping) await redis.ping();
    if (gapMs > 0) await Bun.sleep(gapMs);
  }
  return (cpuMs() - start) / n;
}

for (let round = 1; round <= Number(values.rounds); round++) {
  const timer = await perIteration(200, 10, false);
  const idlePing = (await perIteration(200, 10, true)) - timer;
  const hotPing = await perIteration(5000, 0, true);
  console.log(
    `round ${round}: a 10 ms timer's wake-up ${timer.toFixed(3)} ms CPU; a PING after 10 ms idle ${idlePing.toFixed(3)} ms; a PING back to back ${hotPing.toFixed(3)} ms`,
  );
}
redis.disconnect();
