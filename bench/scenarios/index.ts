/** Every scenario `bun bench` knows, in the order --help lists them. Add a new one here. */
import { baselineScenario } from "./baseline";
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
  {
    name: "cache",
    description: "hit/miss mixes, lookup latency, embedding calls per request",
    arrivesWith: { issue: 5, feature: "the semantic cache" },
  },
  baselineScenario,
  nullScenario,
];

export function findScenario(name: string): ScenarioEntry | undefined {
  return SCENARIOS.find((entry) => entry.name === name);
}
