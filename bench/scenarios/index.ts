/** Every scenario `bun bench` knows, in the order --help lists them. Add a new one here. */
import { baselineScenario } from "./baseline";
import { cacheScenario } from "./cache";
import { e2eScenario } from "./e2e";
import { httpScenario } from "./http";
import { nullScenario } from "./null";
import type { ScenarioEntry } from "./scenario";

export const SCENARIOS: readonly ScenarioEntry[] = [
  httpScenario,
  e2eScenario,
  {
    name: "kafka",
    description: "produce → result latency and ingest throughput",
    arrivesWith: { issue: 6, feature: "Kafka ingestion (the consumer role)" },
  },
  cacheScenario,
  baselineScenario,
  nullScenario,
];

export function findScenario(name: string): ScenarioEntry | undefined {
  return SCENARIOS.find((entry) => entry.name === name);
}
