/**
 * `bun run produce`: sends events to KAFKA_TOPIC_IN (or --topic), from a
 * JSON-lines file or generated with a chosen share of duplicate and
 * near-duplicate texts, at a target rate, keyed by user id, with a progress
 * bar and the achieved rate.
 */

import { parseArgs } from "node:util";
import { Partitioners } from "kafkajs";
import { loadConfig } from "../src/config";
import { errorMessage } from "../src/errors";
import { connectAdmin, createKafka, ensureTopics, requiredTopics } from "../src/ingest/kafka";
import { createLogger } from "../src/log";
import { generateEvents } from "../tools/event-generator";
import { type OutgoingEvent, produceEvents } from "../tools/event-producer";

const USAGE = `usage: bun run produce [options]

  --count N            events to send (generated; default 1000; with --file: at most N lines)
  --rate R             events per second (default 0: as fast as the broker takes them)
  --file PATH          a JSON-lines file of events ({event_id?, text, task_type?, metadata?})
  --duplicates S       share 0..1 of generated events repeating an earlier text (default 0.2)
  --near-duplicates S  share 0..1 repeating an earlier text with one word more (default 0.1)
  --malformed S        share 0..1 of malformed events, for the DLQ (default 0)
  --bytes B            approximate size of a generated event (default 300)
  --users U            distinct user ids (message keys) (default 1000)
  --topic T            topic (default KAFKA_TOPIC_IN)
  --id-prefix P        prefix of generated event ids (default: a new one per run)
  --quiet              no progress bar`;

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "1000" },
    rate: { type: "string", default: "0" },
    file: { type: "string" },
    duplicates: { type: "string", default: "0.2" },
    "near-duplicates": { type: "string", default: "0.1" },
    malformed: { type: "string", default: "0" },
    bytes: { type: "string", default: "300" },
    users: { type: "string", default: "1000" },
    topic: { type: "string" },
    "id-prefix": { type: "string" },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function number(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`produce: --${name}=${raw} is not valid: expected a number ${min}..${max}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const count = Math.floor(number("count", values.count, 1, 1e9));
const rate = number("rate", values.rate, 0, 1e7);
const config = loadConfig();
const topic = values.topic ?? config.kafka.topicIn;

function* fromFile(lines: string[]): Generator<OutgoingEvent> {
  let n = 0;
  for (const line of lines) {
    if (line.trim() === "" || n >= count) continue;
    n++;
    let key: string | null = null;
    try {
      const event = JSON.parse(line) as { user_id?: unknown; metadata?: { user_id?: unknown } };
      const user = event.metadata?.user_id ?? event.user_id;
      key = typeof user === "string" || typeof user === "number" ? String(user) : null;
    } catch {
      // A malformed line is sent as it is: the consumer's DLQ is where it belongs.
    }
    yield { key, value: line };
  }
}

const events: Iterable<OutgoingEvent> = values.file
  ? fromFile((await Bun.file(values.file).text()).split("\n"))
  : generateEvents({
      count,
      idPrefix: values["id-prefix"] ?? `evt-${Date.now().toString(36)}`,
      duplicateShare: number("duplicates", values.duplicates, 0, 1),
      nearDuplicateShare: number("near-duplicates", values["near-duplicates"], 0, 1),
      malformedShare: number("malformed", values.malformed, 0, 1),
      bytes: number("bytes", values.bytes, 50, 1_000_000),
      users: Math.floor(number("users", values.users, 1, 1e9)),
      seed: Date.now() % 2 ** 31,
    });

const logger = createLogger({ level: "warn" });
const kafka = createKafka(config.kafka, logger, { retry: { retries: 5, initialRetryTime: 200 } });
try {
  const admin = await connectAdmin(kafka, config.kafka.brokers);
  if (topic === config.kafka.topicIn) await ensureTopics(admin, requiredTopics(config.kafka));
  await admin.disconnect();
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const total = values.file ? undefined : count;
  const started = performance.now();
  const bar = (sent: number) => {
    if (values.quiet || !process.stderr.isTTY) return;
    const seconds = (performance.now() - started) / 1000;
    const share = total ? sent / total : 0;
    const filled = Math.round(share * 30);
    const bars = total
      ? `[${"#".repeat(filled)}${"-".repeat(30 - filled)}] ${(share * 100).toFixed(0).padStart(3)}% `
      : "";
    process.stderr.write(
      `\r${bars}${sent}${total ? `/${total}` : ""} events  ${(sent / Math.max(seconds, 1e-3)).toFixed(0)}/s `,
    );
  };
  const report = await produceEvents({ producer, topic, events, rate, onProgress: bar });
  await producer.disconnect();
  if (!values.quiet && process.stderr.isTTY) process.stderr.write("\n");
  console.log(
    `sent ${report.sent} events to ${topic} in ${report.seconds.toFixed(2)} s: ${report.rate.toFixed(0)} events/s` +
      (rate > 0 ? ` (target ${rate}/s)` : ""),
  );
  process.exit(0);
} catch (error) {
  console.error(`produce: ${errorMessage(error)}`);
  process.exit(1);
}
