/**
 * The system prompt of each task type. Five built in (the task types of the
 * Python design); PROMPTS_FILE adds or overrides more, as a JSON object of
 * `task_type: prompt`. The set of keys is also the set of task types that
 * POST /process accepts.
 */
import { AppError } from "../errors";
import { TASK_TYPE_PATTERN } from "../task/contract";
import { readJsonSettings } from "../util/json-file";

export type Prompts = Readonly<Record<string, string>>;

export const DEFAULT_PROMPTS: Prompts = {
  sentiment_analysis:
    "You analyse the sentiment of the user's text. Answer with one word (positive, negative, neutral or mixed), " +
    "a confidence between 0 and 1, and one sentence saying why.",
  summarization:
    "You summarise the user's text in at most three sentences, keeping names, figures and dates exact. " +
    "Do not add anything that is not in the text.",
  classification:
    "You classify the user's text into one category (for example: technology, business, health, sports, " +
    "politics, entertainment, science, other). Answer with the category and one sentence saying why.",
  question_answering:
    "You answer the user's question concisely and accurately. If the question cannot be answered from general " +
    "knowledge or the text given, say so instead of guessing.",
  general_analysis:
    "You analyse the user's text: its topic, its key points, its tone and anything notable, in a short " +
    "structured answer.",
};

/** The built-in prompts plus those of the prompts file, if any. A bad file stops the process with its path and reason. */
export function loadPrompts(path?: string): Prompts {
  if (!path) return DEFAULT_PROMPTS;
  const file = readJsonSettings("PROMPTS_FILE", path, "PROMPTS_FILE_INVALID", "a JSON object of task_type: prompt");
  const extra: Record<string, string> = {};
  for (const [taskType, prompt] of file.entries) {
    if (!TASK_TYPE_PATTERN.test(taskType)) file.fail(`task type "${taskType}" must match ${TASK_TYPE_PATTERN.source}`);
    if (typeof prompt !== "string" || prompt.trim() === "")
      file.fail(`the prompt of "${taskType}" must be a non-empty string`);
    extra[taskType] = prompt as string;
  }
  return { ...DEFAULT_PROMPTS, ...extra };
}

/** The system prompt of a task type; an unknown type is the client's error (422), never retried. */
export function promptFor(prompts: Prompts, taskType: string): string {
  const prompt = prompts[taskType];
  if (prompt === undefined) {
    throw new AppError("UNKNOWN_TASK_TYPE", `task_type: unknown task type '${taskType}'`, {
      status: 422,
      details: { field: "task_type", known: Object.keys(prompts).sort() },
    });
  }
  return prompt;
}
