/**
 * The openai SDK's errors mapped to LlmError, shared by chat and embeddings
 * (the mapping itself is provider-errors.ts, shared with Anthropic's SDK).
 */
import OpenAI from "openai";
import { stainlessErrorMapper } from "./provider-errors";

export { retryAfterMs } from "./provider-errors";

/** Maps an SDK error to an LlmError whose `retriable` follows HTTP: 408, 409, 429 and 5xx are transient, other 4xx are not. */
export const toLlmError = stainlessErrorMapper(OpenAI);
