/**
 * Which queue a task goes to, as Celery's task_routes: API tasks →
 * ai_processing, Kafka events → kafka_events, maintenance → default, unless
 * TASK_ROUTES sends a task type to a queue of its own. Producers (the API, the
 * Kafka consumer) and workers agree on these names; Bee-Queue's own layout of
 * a queue in Redis is queue/bee-queue-layout.ts.
 */
import type { TaskSource } from "./contract";

/** The queues every deployment has: maintenance, API tasks, Kafka events. */
export const BASE_QUEUES = ["default", "ai_processing", "kafka_events"] as const;

const SOURCE_QUEUES: Readonly<Record<TaskSource, (typeof BASE_QUEUES)[number]>> = {
  api: "ai_processing",
  kafka: "kafka_events",
  maintenance: "default",
};

export function routeTask(routes: ReadonlyMap<string, string>, taskType: string, source: TaskSource): string {
  return routes.get(taskType) ?? SOURCE_QUEUES[source];
}

/** Every queue a producer may add to: the base queues and those the routes name. */
export function producerQueues(routes: ReadonlyMap<string, string>, workerQueues: readonly string[] = []): string[] {
  return [...new Set([...BASE_QUEUES, ...routes.values(), ...workerQueues])];
}
