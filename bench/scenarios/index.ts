/** Every scenario `bun bench` knows, in the order --help lists them. Add a new one here. */
import { baselineScenario } from "./baseline";
import { cacheScenario } from "./cache";
import { cacheQualityScenario } from "./cache-quality";
import { consoleScenario } from "./console";
import { e2eScenario } from "./e2e";
import { eventsScenario } from "./events";
import { httpScenario } from "./http";
import { kafkaScenario } from "./kafka";
import { nullScenario } from "./null";
import type { ScenarioEntry } from "./scenario";
import { streamScenario } from "./stream";

export const SCENARIOS: readonly ScenarioEntry[] = [
  httpScenario,
  e2eScenario,
  kafkaScenario,
  cacheScenario,
  cacheQualityScenario,
  eventsScenario,
  streamScenario,
  consoleScenario,
  baselineScenario,
  nullScenario,
];

export function findScenario(name: string): ScenarioEntry | undefined {
  return SCENARIOS.find((entry) => entry.name === name);
}
