/**
 * The setup the operator console's browser tests share: the real app with every role (api, consumer, worker)
 * reading Kafka topics of its own, its LLM behind the project's mock server with a fault that makes the tasks
 * whose text contains FAIL_TEXT fail at their first attempt (a 400 is not retried), an admin and a tenant key,
 * and a headless Chromium. `stop()` undoes all of it.
 */
import type { Admin, Kafka } from "kafkajs";
import type { Browser } from "puppeteer-core";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { ingestNames } from "../integration/fixtures/kafka-ingest";
import { type AppProcess, launchWithMock } from "./app-process";
import { launchBrowser } from "./browser";
import { requireKafka, uniquePrefix } from "./services";

/** Tasks whose text contains this fail for good through the mock provider. */
export const FAIL_TEXT = "please fail this one";

export interface ConsoleApp {
  app: AppProcess;
  mock: MockOpenAiServer;
  browser: Browser;
  kafka: Kafka;
  admin: Admin;
  /** The app's input topic and its dead-letter topic. */
  topic: string;
  dlq: string;
  /** Unique to this run: event ids and names built from it do not collide with another run's. */
  prefix: string;
  /** Closes the browser, stops the app (its exit code), the mock, and deletes the group and topics. */
  stop(): Promise<number | undefined>;
}

export async function startConsoleApp(options: {
  name: string;
  db: number;
  keys: { admin: string; tenant: string };
  partitions?: number;
  env?: Record<string, string>;
}): Promise<ConsoleApp> {
  const prefix = uniquePrefix(options.name).replaceAll("-", "_");
  const { groupId, topics } = ingestNames(prefix);
  const [topic, dlq] = topics as [string, string];
  const { kafka, admin } = await requireKafka();
  await admin.createTopics({
    topics: [
      { topic, numPartitions: options.partitions ?? 2 },
      { topic: dlq, numPartitions: 1 },
    ],
    waitForLeaders: true,
  });
  const mock = createMockOpenAiServer({ port: 0 });
  mock.setFault({ kind: "400", textIncludes: FAIL_TEXT, endpoint: "chat" });
  let app: AppProcess | undefined;
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close();
    const code = app ? await app.stop() : undefined;
    await mock.stop();
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.deleteTopics({ topics }).catch(() => {});
    await admin.disconnect();
    return code;
  };
  try {
    app = await launchWithMock(mock, options.db, {
      ROLES: "api,consumer,worker",
      API_KEYS: `ops:${options.keys.admin},web:${options.keys.tenant}`,
      API_ADMINS: "ops",
      KAFKA_TOPIC_IN: topic,
      KAFKA_GROUP_ID: groupId,
      KAFKA_CONSUMER_THREADS: "1",
      ...options.env,
    });
    browser = await launchBrowser();
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
  return { app, mock, browser, kafka, admin, topic, dlq, prefix, stop };
}
