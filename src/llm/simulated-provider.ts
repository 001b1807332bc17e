/**
 * The offline default provider: deterministic answers per task type, a
 * configurable latency (fixed, uniform in a range, or log-normal), and lexical
 * embeddings. Its results say `model: "simulated"` so that nobody mistakes
 * them for a model's. Asked to stream (onToken), it sends its answer word by
 * word, `tokenLatencyMs` apart, after the latency.
 */
import { sleep } from "../util/backoff";
import { type LatencyDistribution, latencySampler } from "../util/latency";
import { lexicalEmbedding } from "./lexical-embedding";
import { type ChatRequest, type ChatResult, estimateTokens, type LlmProvider } from "./provider";

export const SIMULATED_MODEL = "simulated";

const POSITIVE = new Set(
  "good great excellent love loved like happy glad wonderful amazing fantastic best nice perfect pleased awesome recommend fast easy bueno excelente feliz genial".split(
    " ",
  ),
);
const NEGATIVE = new Set(
  "bad terrible awful hate hated poor sad angry worst broken slow horrible disappointed useless fail failed problem malo terrible odio triste lento".split(
    " ",
  ),
);
const CATEGORIES: Record<string, readonly string[]> = {
  technology: ["software", "computer", "ai", "data", "app", "internet", "code", "cloud", "phone", "server"],
  business: ["market", "company", "sales", "revenue", "price", "customer", "stock", "bank", "profit", "money"],
  health: ["health", "doctor", "hospital", "disease", "medicine", "patient", "virus", "diet", "sleep"],
  sports: ["game", "team", "match", "player", "score", "league", "football", "win", "coach"],
  science: ["research", "study", "experiment", "physics", "biology", "space", "climate", "energy"],
};

function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

function sentiment(text: string): string {
  let score = 0;
  for (const word of words(text)) score += POSITIVE.has(word) ? 1 : NEGATIVE.has(word) ? -1 : 0;
  const label = score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
  const confidence = Math.min(0.99, 0.5 + Math.abs(score) * 0.1).toFixed(2);
  return `${label} (confidence ${confidence}; lexicon score ${score})`;
}

function summary(text: string): string {
  const sentences = text
    .replace(/\s+/g, " ")
    .trim()
    .split(/(?<=[.!?])\s/);
  const first = sentences.slice(0, 2).join(" ");
  return first.length > 280 ? `${first.slice(0, 277)}...` : first;
}

function category(text: string): string {
  const counts = Object.entries(CATEGORIES).map(([name, keywords]) => {
    const found = words(text).filter((word) => keywords.includes(word)).length;
    return [name, found] as const;
  });
  const [name, found] = counts.reduce((best, next) => (next[1] > best[1] ? next : best));
  return found > 0 ? `${name} (${found} keyword${found === 1 ? "" : "s"})` : "other (no keyword matched)";
}

function analysis(text: string): string {
  const all = words(text);
  const frequent = [
    ...Map.groupBy(
      all.filter((w) => w.length > 3),
      (w) => w,
    ),
  ]
    .sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([word]) => word);
  return `${all.length} words, ${text.length} characters; frequent terms: ${frequent.join(", ") || "none"}; sentiment ${sentiment(text)}`;
}

/** The deterministic answer of a task type; custom types from PROMPTS_FILE get the general analysis. */
export function simulatedAnswer(taskType: string, text: string): string {
  switch (taskType) {
    case "sentiment_analysis":
      return sentiment(text);
    case "summarization":
      return summary(text);
    case "classification":
      return category(text);
    case "question_answering":
      return `[simulated] no model was asked; the question had ${words(text).length} words`;
    default:
      return analysis(text);
  }
}

/** The pieces a streamed answer is sent in: each word with the blank before it, so that they join back into it. */
export function tokenPieces(text: string): string[] {
  const pieces: string[] = [...(text.match(/\s*\S+/g) ?? [])];
  const rest = text.slice(pieces.join("").length);
  if (rest) pieces.push(rest);
  return pieces;
}

export interface SimulatedProviderOptions {
  /** Fixed, uniform in [min, max], or log-normal (util/latency.ts). */
  latencyMs?: LatencyDistribution;
  /** Wait between two tokens of a streamed answer, ms. */
  tokenLatencyMs?: number;
  embeddingDim: number;
  random?: () => number;
}

/** The simulated provider's embedding model: lexical trigrams, named so they never share an index with real vectors. */
export function simulatedEmbeddingModel(dim: number): string {
  return `simulated-lexical-${dim}`;
}

export function createSimulatedProvider(options: SimulatedProviderOptions): LlmProvider {
  const { latencyMs = { min: 0, max: 0 }, tokenLatencyMs = 0, embeddingDim, random = Math.random } = options;
  const delay = latencySampler(latencyMs, random);
  return {
    name: "simulated",
    embeddingModel: simulatedEmbeddingModel(embeddingDim),
    embeddingDim,
    async chat(request: ChatRequest): Promise<ChatResult> {
      const ms = delay();
      if (ms > 0) await sleep(ms, request.signal);
      else request.signal?.throwIfAborted();
      const text = simulatedAnswer(request.taskType, request.user);
      if (request.onToken) {
        for (const [i, piece] of tokenPieces(text).entries()) {
          if (i > 0 && tokenLatencyMs > 0) await sleep(tokenLatencyMs, request.signal);
          request.onToken(piece);
        }
      }
      const promptTokens = estimateTokens(request.system) + estimateTokens(request.user);
      const completionTokens = Math.min(request.maxTokens, estimateTokens(text));
      return {
        text,
        model: SIMULATED_MODEL,
        finishReason: "stop",
        usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
      };
    },
    async embed(texts, embedOptions) {
      embedOptions?.signal?.throwIfAborted();
      return texts.map((text) => lexicalEmbedding(text, embeddingDim));
    },
  };
}
