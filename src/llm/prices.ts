/**
 * What a call costs (issue 17 §4): a price table per model, USD per million
 * tokens for input, output, cached input and embeddings. The built-in table
 * holds list prices of the models the README names (check them against the
 * providers' pages before relying on them for billing); LLM_PRICES_FILE adds
 * or replaces entries. A model missing from both is priced at
 * LLM_PRICE_INPUT_PER_MTOK / LLM_PRICE_OUTPUT_PER_MTOK, the flat prices the
 * cache's savings estimate already used, so that no call is ever counted free
 * by omission.
 *
 * Keys are `provider/model`. A provider reports dated names
 * (gpt-4o-mini-2024-07-18, claude-3-5-haiku-20241022): the longest key of the
 * provider that the name starts with, `-latest` aside, prices it.
 */
import { readJsonSettings } from "../util/json-file";
import type { TokenUsage } from "./provider";

export interface ModelPrice {
  /** USD per million input tokens not read from a cache. */
  readonly input: number;
  readonly output: number;
  /** USD per million input tokens read from the provider's prompt cache; absent: the input price. */
  readonly cachedInput?: number;
  /** USD per million tokens embedded, for embedding models. */
  readonly embedding?: number;
}

export type PriceTable = ReadonlyMap<string, ModelPrice>;

export const DEFAULT_PRICES: PriceTable = new Map<string, ModelPrice>([
  ["openai/gpt-4o-mini", { input: 0.15, output: 0.6, cachedInput: 0.075 }],
  ["openai/gpt-4o", { input: 2.5, output: 10, cachedInput: 1.25 }],
  ["openai/gpt-4.1-mini", { input: 0.4, output: 1.6, cachedInput: 0.1 }],
  ["openai/gpt-4.1", { input: 2, output: 8, cachedInput: 0.5 }],
  ["openai/text-embedding-3-small", { input: 0.02, output: 0, embedding: 0.02 }],
  ["openai/text-embedding-3-large", { input: 0.13, output: 0, embedding: 0.13 }],
  ["anthropic/claude-3-5-haiku-latest", { input: 0.8, output: 4, cachedInput: 0.08 }],
  ["anthropic/claude-3-5-sonnet-latest", { input: 3, output: 15, cachedInput: 0.3 }],
  ["anthropic/claude-3-haiku", { input: 0.25, output: 1.25, cachedInput: 0.03 }],
  ["cohere/command-r", { input: 0.15, output: 0.6 }],
  ["cohere/command-r-plus", { input: 2.5, output: 10 }],
  ["cohere/command-a-03-2025", { input: 2.5, output: 10 }],
  ["cohere/embed-v4.0", { input: 0.12, output: 0, embedding: 0.12 }],
  ["cohere/embed-english-v3.0", { input: 0.1, output: 0, embedding: 0.1 }],
  ["simulated/simulated", { input: 0, output: 0 }],
]);

/** The price of `provider/model`: its entry, else the longest entry its name starts with, else `fallback`. */
export function priceOf(table: PriceTable, provider: string, model: string, fallback: ModelPrice): ModelPrice {
  const exact = table.get(`${provider}/${model}`);
  if (exact) return exact;
  let best: [number, ModelPrice] | undefined;
  for (const [key, price] of table) {
    const base = key.replace(/-latest$/, "");
    if (!base.startsWith(`${provider}/`) || !`${provider}/${model}`.startsWith(base)) continue;
    if (!best || base.length > best[0]) best = [base.length, price];
  }
  return best?.[1] ?? fallback;
}

/** USD of one call's usage: uncached input, cached input and output each at its price. */
export function costOf(price: ModelPrice, usage: TokenUsage): number {
  const cached = Math.min(usage.cachedPromptTokens ?? 0, usage.promptTokens);
  const usd =
    (usage.promptTokens - cached) * price.input +
    cached * (price.cachedInput ?? price.input) +
    usage.completionTokens * price.output;
  return usd / 1e6;
}

const FIELDS = { input: "input", output: "output", cached_input: "cachedInput", embedding: "embedding" } as const;

/** The built-in table with LLM_PRICES_FILE's entries over it. A bad file stops the process with its path and reason. */
export function loadPrices(path: string | undefined): PriceTable {
  if (!path) return DEFAULT_PRICES;
  const { entries, fail } = readJsonSettings(
    "LLM_PRICES_FILE",
    path,
    "PRICES_FILE_INVALID",
    'a JSON object of "provider/model": {input, output, cached_input?, embedding?}',
  );
  const table = new Map(DEFAULT_PRICES);
  for (const [model, entry] of entries) {
    if (!model.includes("/")) fail(`"${model}": name it provider/model`);
    if (typeof entry !== "object" || entry === null) fail(`"${model}": expected an object of prices`);
    const price: Record<string, number> = {};
    for (const [field, value] of Object.entries(entry as Record<string, unknown>)) {
      const name = FIELDS[field as keyof typeof FIELDS];
      if (!name) fail(`"${model}": unknown field "${field}" (input, output, cached_input, embedding)`);
      if (typeof value !== "number" || !(value >= 0)) fail(`"${model}".${field}: expected USD per million tokens >= 0`);
      price[name as string] = value as number;
    }
    if (price.input === undefined || price.output === undefined) fail(`"${model}": input and output are required`);
    table.set(model, price as unknown as ModelPrice);
  }
  return table;
}
