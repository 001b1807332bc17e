/**
 * A settings file that is a JSON object (PROMPTS_FILE, LLM_ROUTES_FILE,
 * LLM_PRICES_FILE), read once at start: a file that is missing, not JSON or
 * not an object stops the process with the variable, the path and the
 * reason, and so does every `fail` of the caller's own checks.
 */
import { readFileSync } from "node:fs";
import { AppError, errorMessage } from "../errors";

export interface JsonSettingsFile {
  entries: [string, unknown][];
  /** Throws the file's error: `VARIABLE=path: reason`. */
  fail: (reason: string) => never;
}

export function readJsonSettings(variable: string, path: string, code: string, expected: string): JsonSettingsFile {
  const fail = (reason: string): never => {
    throw new AppError(code, `${variable}=${path}: ${reason}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    fail(errorMessage(error));
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) fail(`expected ${expected}`);
  return { entries: Object.entries(parsed as Record<string, unknown>), fail };
}
