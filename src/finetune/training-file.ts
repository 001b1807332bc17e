/**
 * The training and validation files of a fine-tune, in OpenAI's chat JSONL
 * format: one `{"messages":[system, user, assistant]}` a line, the system
 * prompt the task was answered with, its text, and the answer a client rated
 * well (store/training-examples.ts).
 *
 * What is left out, and counted: examples whose copy expired (`gone`), those
 * whose task kept no text (`no_text`: RESULT_KEEP_INPUT=false), any whose
 * feedback is not positive (`not_positive`: the index never holds one, and
 * this makes sure of it), an empty answer (`empty`), and the second and later
 * copies of the same system prompt, text and answer (`duplicate`: answers
 * served from the semantic cache repeat an example, and repeats weigh it more).
 *
 * The validation split is deterministic: examples sorted by a hash of their
 * task id, the first share held out. The same examples give the same split on
 * every build (a rebuild after a restart, a test), and one example's arrival
 * moves no other between the two files. It never takes the training file
 * below OpenAI's minimum of 10 examples.
 */
import { createHash } from "node:crypto";
import { isPositive, type TrainingExample } from "../store/training-examples";
import type { TaskResult } from "../task/contract";

/** OpenAI refuses a training file of fewer examples. */
export const MIN_TRAINING_EXAMPLES = 10;

export const SKIP_REASONS = ["gone", "no_text", "not_positive", "empty", "duplicate"] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export interface TrainingCounts {
  /** Usable examples: training + validation. */
  examples: number;
  training: number;
  validation: number;
  /** Left out, all reasons together. */
  skipped: number;
  skipped_by_reason: Record<SkipReason, number>;
}

export interface TrainingFiles {
  /** JSONL, one example a line, newline-terminated. */
  training: string;
  /** Undefined when nothing is held out. */
  validation: string | undefined;
  counts: TrainingCounts;
}

export type SystemPromptOf = (taskType: string, result: TaskResult) => string;

/** The examples held out for validation out of `usable`, at `fraction`: at least one when any is asked for and allowed. */
export function validationSize(usable: number, fraction: number): number {
  if (fraction <= 0) return 0;
  const room = usable - MIN_TRAINING_EXAMPLES;
  return Math.max(0, Math.min(Math.max(1, Math.round(usable * fraction)), room));
}

const splitKey = (taskId: string) => createHash("sha256").update(taskId).digest("hex");

/** One line of the file: OpenAI's chat fine-tuning format. */
export function exampleLine(system: string, input: string, response: string): string {
  return JSON.stringify({
    messages: [
      { role: "system", content: system },
      { role: "user", content: input },
      { role: "assistant", content: response },
    ],
  });
}

export function buildTrainingFiles(input: {
  examples: readonly TrainingExample[];
  /** Index entries whose copy is gone (TrainingExamples.read). */
  gone: number;
  systemPromptOf: SystemPromptOf;
  validationFraction: number;
}): TrainingFiles {
  const skipped: Record<SkipReason, number> = { gone: input.gone, no_text: 0, not_positive: 0, empty: 0, duplicate: 0 };
  const seen = new Set<string>();
  const usable: { taskId: string; line: string }[] = [];
  for (const example of input.examples) {
    if (!isPositive(example.feedback)) skipped.not_positive++;
    else if (example.input === undefined || example.input.trim() === "") skipped.no_text++;
    else if (example.result.response.trim() === "") skipped.empty++;
    else {
      const line = exampleLine(
        input.systemPromptOf(example.task_type, example.result),
        example.input,
        example.result.response,
      );
      if (seen.has(line)) skipped.duplicate++;
      else {
        seen.add(line);
        usable.push({ taskId: example.task_id, line });
      }
    }
  }
  const held = validationSize(usable.length, input.validationFraction);
  const validationIds = new Set(
    usable
      .map((example) => ({ id: example.taskId, key: splitKey(example.taskId) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .slice(0, held)
      .map((example) => example.id),
  );
  const training = usable.filter((example) => !validationIds.has(example.taskId)).map((example) => example.line);
  const validation = usable.filter((example) => validationIds.has(example.taskId)).map((example) => example.line);
  const file = (lines: string[]) => (lines.length > 0 ? `${lines.join("\n")}\n` : "");
  return {
    training: file(training),
    validation: validation.length > 0 ? file(validation) : undefined,
    counts: {
      examples: usable.length,
      training: training.length,
      validation: validation.length,
      skipped: Object.values(skipped).reduce((sum, n) => sum + n, 0),
      skipped_by_reason: skipped,
    },
  };
}
