/**
 * The configuration module's public face: `import ... from "../config"` finds
 * this file, so callers never learn how the module is split inside.
 */

export { parseRateLimit } from "./build";
export { describeConfig } from "./describe";
export { ConfigError, loadConfig } from "./load";
export { CONFIG_VARIABLES } from "./schema";
export {
  type ApiKey,
  type Config,
  EMBEDDING_PROVIDERS,
  type EmbeddingProviderName,
  LLM_PROVIDERS,
  type LlmProviderName,
  LOCAL_EMBEDDING_MODEL,
  LOCAL_EMBEDDINGS_URL,
  LOG_LEVELS,
  type LogLevel,
  type RateLimit,
  ROLES,
  type Role,
} from "./types";
