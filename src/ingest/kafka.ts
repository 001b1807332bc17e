/**
 * The kafkajs client of the process, its logs routed to pino, and the topics
 * this product needs.
 */
import { type Admin, Kafka, type KafkaConfig, logLevel } from "kafkajs";
import type { Config } from "../config";
import { errorMessage, UnavailableError } from "../errors";
import type { HealthProbe } from "../health-probe";
import type { Logger } from "../log";

/** Partitions of the input topic: the most consumer threads (across processes) that can share the work. */
export const INPUT_PARTITIONS = 6;

const LEVELS: Record<number, "error" | "warn" | "info" | "debug"> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

export function createKafka(
  config: Pick<Config["kafka"], "brokers">,
  logger: Logger,
  options: Partial<KafkaConfig> = {},
): Kafka {
  const log = logger.child({ component: "kafka" });
  return new Kafka({
    clientId: "ai-eventstream",
    brokers: [...config.brokers],
    connectionTimeout: 3000,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, level, log: entry }) => {
        const { message, timestamp: _timestamp, logger: _logger, ...context } = entry;
        log[LEVELS[level] ?? "info"]({ namespace, ...context }, message);
      },
    ...options,
  });
}

/** Connects an admin client, failing fast with a message that names KAFKA_BROKERS. */
export async function connectAdmin(kafka: Kafka, brokers: readonly string[]): Promise<Admin> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return admin;
  } catch (error) {
    await admin.disconnect().catch(() => {});
    throw new UnavailableError(
      "Kafka",
      `cannot reach ${brokers.join(",")} (KAFKA_BROKERS): ${errorMessage(error)}`,
      error,
    );
  }
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
}

export function requiredTopics(config: Config["kafka"]): TopicSpec[] {
  const topics: TopicSpec[] = [
    { topic: config.topicIn, numPartitions: INPUT_PARTITIONS },
    { topic: config.dlqTopic, numPartitions: 1 },
  ];
  if (config.topicOut) topics.push({ topic: config.topicOut, numPartitions: INPUT_PARTITIONS });
  return topics;
}

/**
 * Creates the topics that do not exist yet; existing ones are left as they
 * are (their partition count is the operator's choice). Returns the names
 * created.
 */
export async function ensureTopics(admin: Admin, topics: readonly TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return [];
  await admin.createTopics({
    topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions, replicationFactor: -1 })),
    waitForLeaders: true,
  });
  return missing.map((t) => t.topic);
}

export function kafkaProbe(admin: Admin, required: boolean): HealthProbe {
  return {
    name: "kafka",
    required,
    async check() {
      const cluster = await admin.describeCluster();
      return { brokers: cluster.brokers.length, controller: cluster.controller };
    },
  };
}
