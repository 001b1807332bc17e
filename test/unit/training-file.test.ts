/**
 * The fine-tuning file builder (finetune/training-file.ts): OpenAI's chat
 * JSONL with the system prompt, only positively rated examples, what is left
 * out counted by reason, and a validation split that is the same on every
 * build and never takes the training file below OpenAI's 10 examples.
 */
import { describe, expect, test } from "bun:test";
import { buildTrainingFiles, MIN_TRAINING_EXAMPLES, validationSize } from "../../src/finetune/training-file";
import { isPositive, type TrainingExample } from "../../src/store/training-examples";
import { checkChatExamples } from "../../tools/mock-openai-fine-tuning";

const example = (n: number, changes: Partial<TrainingExample> = {}): TrainingExample => ({
  task_id: `task-${n}`,
  task_type: "summarization",
  input: `text number ${n}`,
  result: {
    response: `summary number ${n}`,
    task_type: "summarization",
    model: "gpt-4o-mini",
    processing_time: 0.1,
    from_cache: false,
    metadata: { tokens_used: 3, prompt_tokens: 2, completion_tokens: 1 },
  },
  feedback: { rating: 5 },
  at: 1_700_000_000_000 + n,
  ...changes,
});
const many = (count: number) => Array.from({ length: count }, (_, n) => example(n));
const promptOf = (taskType: string) => `the prompt of ${taskType}`;
const lines = (file: string | undefined) =>
  (file ?? "")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { messages: { role: string; content: string }[] });

describe("positive feedback", () => {
  test("a rating of 4 or 5, or correct: true without a rating below 4", () => {
    expect(isPositive({ rating: 4 })).toBe(true);
    expect(isPositive({ rating: 5, correct: true })).toBe(true);
    expect(isPositive({ correct: true })).toBe(true);
    expect(isPositive({ rating: 3 })).toBe(false);
    expect(isPositive({ correct: true, rating: 3 })).toBe(false);
    expect(isPositive({ correct: false, rating: 5 })).toBe(false);
    expect(isPositive({ correct: false })).toBe(false);
    expect(isPositive({})).toBe(false);
  });
});

describe("the training file", () => {
  test("each line is OpenAI's chat format: the system prompt, the task's text, the rated answer", () => {
    const built = buildTrainingFiles({
      examples: many(12),
      gone: 0,
      systemPromptOf: promptOf,
      validationFraction: 0,
    });
    const parsed = lines(built.training);
    expect(parsed).toHaveLength(12);
    expect(parsed[3]).toEqual({
      messages: [
        { role: "system", content: "the prompt of summarization" },
        { role: "user", content: "text number 3" },
        { role: "assistant", content: "summary number 3" },
      ],
    });
    expect(built.training.endsWith("\n")).toBe(true);
    expect(built.validation).toBeUndefined();
    // What OpenAI (and the mock, which checks as OpenAI does) accepts.
    expect(checkChatExamples(built.training, MIN_TRAINING_EXAMPLES)).toBeUndefined();
  });

  test("the system prompt comes from the function given, with each example's result", () => {
    const seen: string[] = [];
    const built = buildTrainingFiles({
      examples: many(10),
      gone: 0,
      systemPromptOf: (taskType, result) => {
        seen.push(result.response);
        return `${taskType} v2`;
      },
      validationFraction: 0,
    });
    expect(seen).toHaveLength(10);
    expect(lines(built.training).every((line) => line.messages[0]?.content === "summarization v2")).toBe(true);
  });

  test("what is left out is counted by reason, and nothing not positive gets in", () => {
    const built = buildTrainingFiles({
      examples: [
        ...many(11),
        example(20, { feedback: { correct: false, rating: 5 } }),
        example(21, { input: undefined }),
        example(22, { input: "  " }),
        example(23, { result: { ...example(23).result, response: "" } }),
        // The same text and answer as task-1 (a cache hit), under another task id.
        example(1, { task_id: "task-1-again" }),
      ],
      gone: 4,
      systemPromptOf: promptOf,
      validationFraction: 0,
    });
    expect(built.counts).toEqual({
      examples: 11,
      training: 11,
      validation: 0,
      skipped: 9,
      skipped_by_reason: { gone: 4, no_text: 2, not_positive: 1, empty: 1, duplicate: 1 },
    });
    expect(built.training).not.toContain("text number 20");
  });
});

describe("the validation split", () => {
  test("the same examples give the same split, whatever their order", () => {
    const examples = many(40);
    const once = buildTrainingFiles({ examples, gone: 0, systemPromptOf: promptOf, validationFraction: 0.1 });
    const again = buildTrainingFiles({
      examples: [...examples].reverse(),
      gone: 0,
      systemPromptOf: promptOf,
      validationFraction: 0.1,
    });
    const held = (file: string | undefined) => new Set(lines(file).map((line) => line.messages[1]?.content));
    expect(once.counts).toMatchObject({ examples: 40, training: 36, validation: 4 });
    expect(held(again.validation)).toEqual(held(once.validation));
  });

  test("a new example moves no other one between the files", () => {
    const before = buildTrainingFiles({
      examples: many(100),
      gone: 0,
      systemPromptOf: promptOf,
      validationFraction: 0.2,
    });
    const after = buildTrainingFiles({
      examples: many(101),
      gone: 0,
      systemPromptOf: promptOf,
      validationFraction: 0.2,
    });
    const held = (file: string | undefined) => lines(file).map((line) => line.messages[1]?.content as string);
    // 20 then 20 (round(101 × 0.2) = 20): the new one, if held out, takes the place of exactly one.
    const moved = held(before.validation).filter((text) => !held(after.validation).includes(text));
    expect(moved.length).toBeLessThanOrEqual(1);
  });

  test("never below 10 training examples, at least one held out when asked and possible", () => {
    expect(validationSize(10, 0.1)).toBe(0);
    expect(validationSize(11, 0.1)).toBe(1);
    expect(validationSize(12, 0.5)).toBe(2);
    expect(validationSize(100, 0.1)).toBe(10);
    expect(validationSize(100, 0)).toBe(0);
    const built = buildTrainingFiles({
      examples: many(12),
      gone: 0,
      systemPromptOf: promptOf,
      validationFraction: 0.5,
    });
    expect(built.counts).toMatchObject({ training: 10, validation: 2 });
    expect(lines(built.training).length + lines(built.validation).length).toBe(12);
  });
});
