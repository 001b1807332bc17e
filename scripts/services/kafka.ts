/**
 * A single-node Apache Kafka broker in KRaft mode, without Docker: the broker's
 * jars from Maven Central (scripts/kafka/pom.xml), run on the machine's Java 17+
 * with a small heap. Storage is formatted once; later starts reuse it.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import {
  CACHE_DIR,
  ensureDir,
  isLocalHost,
  logTail,
  ownedPid,
  ROOT,
  RUNTIME_DIR,
  run,
  ServiceError,
  startDetached,
  stopOwned,
  tail,
  waitForStart,
} from "./common";

const POM = join(ROOT, "scripts", "kafka", "pom.xml");
const LOG4J_CONFIG = join(ROOT, "scripts", "kafka", "log4j2.yaml");
export const KAFKA_VERSION =
  /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(POM, "utf8"))?.[1] ?? "unknown";
const LIBS_DIR = join(CACHE_DIR, `kafka-${KAFKA_VERSION}`, "libs");
const KAFKA_DIR = join(RUNTIME_DIR, "kafka");
const DATA_DIR = join(KAFKA_DIR, "data");
const PROPERTIES = join(KAFKA_DIR, "server.properties");
const PID_FILE = join(KAFKA_DIR, "kafka.pid");
const LOG_FILE = join(KAFKA_DIR, "kafka.log");

export interface KafkaTarget {
  host: string;
  port: number;
  controllerPort: number;
  brokers: string[];
}

export function kafkaTarget(brokers: readonly string[]): KafkaTarget {
  const [first = "127.0.0.1:9092"] = brokers;
  const separator = first.lastIndexOf(":");
  const port = Number(first.slice(separator + 1));
  const controllerPort = Number(process.env.KAFKA_CONTROLLER_PORT ?? port + 1);
  return { host: first.slice(0, separator), port, controllerPort, brokers: [...brokers] };
}

async function javaCommand(): Promise<string> {
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, "bin", "java") : "java";
  const version = await run([java, "-version"]);
  const major = Number(/version "(\d+)/.exec(version.stderr)?.[1] ?? 0);
  if (version.code !== 0 || major < 17) {
    throw new ServiceError(
      `Kafka ${KAFKA_VERSION} needs Java 17 or newer; \`${java} -version\` said: ${tail(version.stderr || version.stdout, 2) || "not found"}. ` +
        "Install a JDK 17+ (apt-get install openjdk-17-jre-headless) or set JAVA_HOME.",
    );
  }
  return java;
}

async function provision(log: (line: string) => void): Promise<void> {
  if (existsSync(join(LIBS_DIR, ".complete"))) return;
  log(`kafka: fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central into ${LIBS_DIR}`);
  ensureDir(LIBS_DIR);
  const mvn = await run([
    "mvn",
    "-q",
    "-B",
    "-f",
    POM,
    "dependency:copy-dependencies",
    `-DoutputDirectory=${LIBS_DIR}`,
    "-DincludeScope=runtime",
  ]);
  const jars = readdirSync(LIBS_DIR).filter((f) => f.endsWith(".jar"));
  if (mvn.code !== 0 || !jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
    throw new ServiceError(
      `could not fetch the Kafka jars with Maven (mvn exited ${mvn.code}):\n${tail(mvn.stdout + mvn.stderr)}\n` +
        "Check that Maven (mvn) is installed and Maven Central is reachable, then run `bun run services:up` again.",
    );
  }
  writeFileSync(join(LIBS_DIR, ".complete"), `${new Date().toISOString()}\n`);
}

function writeProperties(target: KafkaTarget): void {
  const { host, port, controllerPort } = target;
  const properties = [
    "# Written by `bun run services:up`; edits are overwritten.",
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    `log.dirs=${DATA_DIR}`,
    "num.partitions=1",
    // One node: every internal topic has one replica.
    "offsets.topic.replication.factor=1",
    // Fewer offset partitions than the default 50: the first consumer group starts in well under a second.
    "offsets.topic.num.partitions=6",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    // Tests and local runs join groups often; waiting 3 s for more members only slows them.
    "group.initial.rebalance.delay.ms=0",
    "log.retention.hours=24",
  ];
  writeFileSync(PROPERTIES, `${properties.join("\n")}\n`);
}

/**
 * A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, as `kafka-storage random-uuid` makes.
 * Like Kafka's own Uuid.randomUuid, it never starts with "-": one id in 64 would, and the storage tool's
 * argument parser then reads it as an option and fails (`--cluster-id: expected one argument`).
 */
export function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

async function formatOnce(java: string): Promise<void> {
  if (existsSync(join(DATA_DIR, "meta.properties"))) return;
  ensureDir(DATA_DIR);
  const format = await run([
    java,
    `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
    "-cp",
    `${LIBS_DIR}/*`,
    "kafka.tools.StorageTool",
    "format",
    `--cluster-id=${clusterId()}`,
    "-c",
    PROPERTIES,
  ]);
  if (format.code !== 0)
    throw new ServiceError(`formatting Kafka storage failed: ${tail(format.stdout + format.stderr)}`);
}

export interface KafkaStatus {
  running: boolean;
  ownedPid: number | undefined;
  version: string;
  clusterId?: string;
  error?: string;
}

export async function kafkaStatus(target: KafkaTarget, timeoutMs = 3000): Promise<KafkaStatus> {
  const pid = ownedPid(PID_FILE, PROPERTIES);
  const kafka = new Kafka({
    clientId: "ai-eventstream-services",
    brokers: target.brokers,
    connectionTimeout: Math.min(timeoutMs, 1000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return {
      running: true,
      ownedPid: pid,
      version: pid ? KAFKA_VERSION : "unknown (not started by this script)",
      clusterId: cluster.clusterId,
    };
  } catch (error) {
    return { running: false, ownedPid: pid, version: KAFKA_VERSION, error: (error as Error).message };
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function kafkaUp(
  target: KafkaTarget,
  log: (line: string) => void,
  timeoutMs = 90_000,
): Promise<KafkaStatus> {
  const before = await kafkaStatus(target);
  if (before.running) {
    if (before.ownedPid === undefined) {
      log(`kafka: a broker not started by this script already answers on ${target.host}:${target.port}; using it`);
    }
    return before;
  }
  if (!isLocalHost(target.host)) {
    throw new ServiceError(
      `KAFKA_BROKERS points at ${target.host}:${target.port}, which does not answer (${before.error}); ` +
        "services:up only starts a local broker. Start yours, or unset KAFKA_BROKERS to use the local one.",
    );
  }
  let pid = before.ownedPid;
  if (pid !== undefined) {
    // Our broker is alive but does not answer yet (still starting): wait for it rather than start a second one.
    log(`kafka: broker (pid ${pid}) is starting; waiting for it`);
  } else {
    const java = await javaCommand();
    await provision(log);
    ensureDir(KAFKA_DIR);
    writeProperties(target);
    await formatOnce(java);
    const heap = (process.env.KAFKA_HEAP_OPTS ?? "-Xms256m -Xmx512m").split(/\s+/).filter(Boolean);
    pid = startDetached(
      java,
      [
        ...heap,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
        "-cp",
        `${LIBS_DIR}/*`,
        "kafka.Kafka",
        PROPERTIES,
      ],
      { cwd: KAFKA_DIR, logFile: LOG_FILE, pidFile: PID_FILE },
    );
  }
  const { last = before, exited } = await waitForStart(() => kafkaStatus(target), pid, timeoutMs, 500);
  if (!last.running) {
    throw new ServiceError(
      `Kafka did not answer a metadata request on ${target.host}:${target.port} within ${timeoutMs / 1000}s` +
        `${exited ? " and its process exited" : ""}: ${last.error ?? "no answer"}.\n` +
        `Last lines of ${LOG_FILE}:\n${logTail(LOG_FILE)}`,
    );
  }
  log(`kafka: started Apache Kafka ${KAFKA_VERSION} (KRaft) on ${target.host}:${target.port} (data in ${DATA_DIR})`);
  return last;
}

export async function kafkaDown(log: (line: string) => void): Promise<void> {
  const result = await stopOwned(PID_FILE, PROPERTIES, 30_000);
  log(`kafka: ${result}`);
}
