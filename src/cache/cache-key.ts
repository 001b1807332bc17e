/**
 * Names of cache entries. An entry is the hash `{prefix}:{hash}:{task_type}`
 * (ARCHITECTURE.md §7); `hash` covers everything that makes two requests the
 * same request, so the exact tier is one HMGET of a computed key:
 *
 *   scope      tenant · task type · model · system prompt · generation parameters
 *   text       normalised (Unicode NFKC, case-folded, whitespace collapsed)
 *
 * The semantic tier may only match entries of the same scope: the scope's own
 * hash is stored as a TAG and every KNN query filters on it, so a lookup never
 * crosses tenants, models, prompt versions or parameters (fail closed).
 */
import { TASK_TYPE_PATTERN } from "../task/contract";

export interface CacheRequest {
  /** The tenant (API key name); requests without one share the "public" scope. */
  readonly tenant: string | undefined;
  readonly taskType: string;
  readonly text: string;
  readonly model: string;
  /** The system prompt the answer was made with: a new prompt (PROMPTS_FILE) never reuses old answers. */
  readonly system: string;
  readonly temperature: number;
  readonly maxTokens: number;
}

export const PUBLIC_TENANT = "public";

/** What makes two texts the same question for the exact tier: case, width forms and spacing do not. */
export function normaliseForKey(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/gu, " ").trim();
}

const sha256 = (value: string, length: number) =>
  new Bun.CryptoHasher("sha256").update(value).digest("hex").slice(0, length);

/** The scope tag: 16 hex digits of SHA-256 over the scope's parts (a TAG value, no separators to escape). */
export function scopeOf(request: CacheRequest): string {
  return sha256(
    JSON.stringify([
      request.tenant ?? PUBLIC_TENANT,
      request.taskType,
      request.model,
      request.system,
      request.temperature,
      request.maxTokens,
    ]),
    16,
  );
}

/** 32 hex digits (128 bits) of SHA-256 over scope and normalised text. */
export function exactHash(request: CacheRequest, scope = scopeOf(request)): string {
  return sha256(`${scope}\n${normaliseForKey(request.text)}`, 32);
}

const ENTRY_ID = /^([0-9a-f]{32}):([a-z_]+)$/;

export interface CacheKeys {
  /** `{hash}:{task_type}`: what results and DELETE /cache/:id call an entry. */
  entryId(hash: string, taskType: string): string;
  entry(hash: string, taskType: string): string;
  /** The key of an entry id, or undefined when the id is malformed (never used as a key fragment then). */
  entryOfId(id: string): string | undefined;
  /** The single-flight lock of one exact key. */
  lock(hash: string): string;
  /** SCAN pattern of every entry, or of one task type's. */
  entryPattern(taskType?: string): string;
  /** Key prefix of the vector index (FT.CREATE ... PREFIX 1). */
  indexPrefix: string;
}

export function cacheKeys(prefix: string): CacheKeys {
  return {
    entryId: (hash, taskType) => `${hash}:${taskType}`,
    entry: (hash, taskType) => `${prefix}:${hash}:${taskType}`,
    entryOfId: (id) => (ENTRY_ID.test(id) ? `${prefix}:${id}` : undefined),
    lock: (hash) => `${prefix}-lock:${hash}`,
    entryPattern: (taskType) => {
      if (taskType !== undefined && !TASK_TYPE_PATTERN.test(taskType)) throw new Error("invalid task type");
      return `${prefix}:*:${taskType ?? "*"}`;
    },
    indexPrefix: `${prefix}:`,
  };
}
