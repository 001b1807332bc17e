import { describe, expect, test } from "bun:test";
import { AppError } from "../../src/errors";
import { cosineSimilarity, lexicalEmbedding } from "../../src/llm/lexical-embedding";
import { DEFAULT_PROMPTS, loadPrompts, promptFor } from "../../src/llm/prompts";
import { createSimulatedProvider, SIMULATED_MODEL } from "../../src/llm/simulated-provider";

const request = { system: "s", temperature: 0.7, maxTokens: 1000 };

describe("lexical embeddings", () => {
  test("are deterministic, L2-normalised and of the configured dimension", () => {
    const a = lexicalEmbedding("The delivery was fast and the product works well", 384);
    const b = lexicalEmbedding("The delivery was fast and the product works well", 384);
    expect(a).toHaveLength(384);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(cosineSimilarity(a, a)).toBeCloseTo(1, 5);
  });

  test("near-identical texts are near, unrelated texts are far", () => {
    const base = lexicalEmbedding("The delivery was fast and the product works well", 384);
    const near = lexicalEmbedding("the delivery was fast, and the product works well!", 384);
    const far = lexicalEmbedding("Quarterly revenue fell short of analyst expectations in Europe", 384);
    expect(cosineSimilarity(base, near)).toBeGreaterThan(0.9);
    expect(cosineSimilarity(base, far)).toBeLessThan(0.3);
  });

  test("an empty text still gives a unit vector", () => {
    const v = lexicalEmbedding("", 16);
    expect(cosineSimilarity(v, v)).toBeCloseTo(1, 5);
  });
});

describe("simulated provider", () => {
  const provider = createSimulatedProvider({ embeddingDim: 64, latencyMs: { min: 0, max: 0 } });

  test("answers deterministically per task type and says model 'simulated'", async () => {
    const positive = await provider.chat({ ...request, taskType: "sentiment_analysis", user: "I love it, great app" });
    const negative = await provider.chat({ ...request, taskType: "sentiment_analysis", user: "terrible and slow" });
    expect(positive.model).toBe(SIMULATED_MODEL);
    expect(positive.text).toStartWith("positive");
    expect(negative.text).toStartWith("negative");
    const again = await provider.chat({ ...request, taskType: "sentiment_analysis", user: "I love it, great app" });
    expect(again.text).toBe(positive.text);
    const category = await provider.chat({
      ...request,
      taskType: "classification",
      user: "The football team won the match",
    });
    expect(category.text).toStartWith("sports");
    expect(positive.usage.totalTokens).toBe(positive.usage.promptTokens + positive.usage.completionTokens);
  });

  test("waits its configured latency, and a signal aborts the wait", async () => {
    const slow = createSimulatedProvider({ embeddingDim: 8, latencyMs: { min: 50, max: 50 } });
    const started = performance.now();
    await slow.chat({ ...request, taskType: "summarization", user: "One. Two. Three." });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    const hung = createSimulatedProvider({ embeddingDim: 8, latencyMs: { min: 10_000, max: 10_000 } });
    const aborted = hung.chat({ ...request, taskType: "summarization", user: "x", signal: AbortSignal.timeout(20) });
    await expect(aborted).rejects.toThrow();
  });

  test("embeds in order, one vector per text", async () => {
    const vectors = await provider.embed(["alpha", "beta"]);
    expect(vectors).toHaveLength(2);
    expect(Array.from(vectors[0] as Float32Array)).toEqual(Array.from(lexicalEmbedding("alpha", 64)));
  });
});

describe("prompts", () => {
  test("the five task types of the Python design are built in; an unknown one is a 422 naming task_type", () => {
    expect(Object.keys(DEFAULT_PROMPTS).sort()).toEqual([
      "classification",
      "general_analysis",
      "question_answering",
      "sentiment_analysis",
      "summarization",
    ]);
    try {
      promptFor(DEFAULT_PROMPTS, "poetry");
      throw new Error("expected an error");
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).status).toBe(422);
      expect((error as AppError).message).toContain("task_type");
    }
  });

  test("a prompts file adds task types, and a bad one is refused with its path", async () => {
    const good = `/tmp/prompts-${process.pid}-good.json`;
    await Bun.write(good, JSON.stringify({ legal_review: "You review contracts." }));
    expect(promptFor(loadPrompts(good), "legal_review")).toBe("You review contracts.");
    expect(promptFor(loadPrompts(good), "summarization")).toBe(DEFAULT_PROMPTS.summarization as string);
    const bad = `/tmp/prompts-${process.pid}-bad.json`;
    await Bun.write(bad, JSON.stringify({ "Bad-Type": "x" }));
    expect(() => loadPrompts(bad)).toThrow(`PROMPTS_FILE=${bad}`);
    expect(() => loadPrompts("/nonexistent/prompts.json")).toThrow("PROMPTS_FILE=/nonexistent/prompts.json");
  });
});
