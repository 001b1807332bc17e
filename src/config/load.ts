/**
 * Reads the configuration from the environment once: strings in, a checked
 * `Config` out. Every invalid variable is reported at once, each with its name
 * and the values it accepts, and the process stops (STYLE.md: a bad value is
 * never replaced by a default). The schema checks each variable alone; the
 * rules between two variables are checked here, after it.
 */

import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { parseLatency } from "../util/latency";
import { apiKeysOf } from "./api-keys";
import { buildConfig } from "./build";
import { type Env, EnvSchema } from "./schema";
import type { ApiKey, Config } from "./types";

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const PROPERTIES = EnvSchema.properties as Record<string, TSchema>;
const NUMERIC = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/**
 * Turns numeric strings into numbers for the variables whose schema is a
 * number. Deliberately stricter than TypeBox's Value.Convert, which would
 * truncate PORT=80.5 to 80: here it stays 80.5 and fails the integer check.
 */
function toNumbers(raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const type = PROPERTIES[key]?.type;
    const numeric = (type === "integer" || type === "number") && typeof value === "string" && NUMERIC.test(value);
    out[key] = numeric ? Number(value) : value;
  }
  return out;
}

function accepted(schema: TSchema | undefined): string {
  const description = schema?.description;
  return typeof description === "string" ? description : "a valid value";
}

/** Variables whose value an error message never repeats: it is printed on stderr, and lands in logs. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(["WEBHOOK_SECRET"]);

/** One problem per invalid variable (TypeBox may report several errors for one value). */
function schemaProblems(converted: unknown, source: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(EnvSchema, converted)) {
    const name = error.path.split("/")[1] ?? error.path;
    if (seen.has(name)) continue;
    seen.add(name);
    const given = source[name];
    problems.push(
      given === undefined
        ? `${name} is required: ${accepted(PROPERTIES[name])}`
        : `${name}${SECRET_VARIABLES.has(name) ? " (value not shown)" : `="${given}"`} is not valid: expected ${accepted(PROPERTIES[name])}`,
    );
  }
  return problems;
}

/**
 * The rules the schema cannot state: between two variables, across API_KEYS
 * and its file, and the order of SIMULATED_LATENCY_MS's two bounds (a pattern
 * cannot compare numbers). `apiKeys` is undefined when they could not be read.
 */
function crossFieldProblems(env: Env, apiKeys: readonly ApiKey[] | undefined): string[] {
  const problems: string[] = [];
  if (env.LLM_PROVIDER === "openai" && !env.OPENAI_API_KEY) {
    problems.push("LLM_PROVIDER=openai needs OPENAI_API_KEY (set it, or use LLM_PROVIDER=simulated)");
  }
  problems.push(...providerKeyProblems(env));
  if (env.EMBEDDING_PROVIDER === "openai" && !env.OPENAI_API_KEY) {
    problems.push(
      "EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY (set it, or use EMBEDDING_PROVIDER=local or simulated)",
    );
  }
  if (apiKeys) {
    const names = apiKeys.map((k) => k.name);
    const duplicate = names.find((name, i) => names.indexOf(name) !== i);
    if (duplicate) problems.push(`API_KEYS: the name "${duplicate}" appears twice; each name is one tenant`);
    const unknown = env.API_ADMINS === "" ? [] : env.API_ADMINS.split(",").filter((n) => !names.includes(n));
    if (unknown.length > 0) problems.push(`API_ADMINS names no API key: ${unknown.join(", ")}`);
    // A tenant without a key could never read the tasks it owns.
    if (names.length > 0 && env.KAFKA_TENANT !== "" && !names.includes(env.KAFKA_TENANT))
      problems.push(`KAFKA_TENANT names no API key: ${env.KAFKA_TENANT}`);
  }
  if (!parseLatency(env.SIMULATED_LATENCY_MS))
    problems.push(
      `SIMULATED_LATENCY_MS="${env.SIMULATED_LATENCY_MS}": the upper bound (or the P99) is below the lower (or the median)`,
    );
  if (env.KAFKA_QUEUE_LOW_WATERMARK >= env.KAFKA_QUEUE_HIGH_WATERMARK) {
    problems.push("KAFKA_QUEUE_LOW_WATERMARK must be below KAFKA_QUEUE_HIGH_WATERMARK");
  }
  if (env.KAFKA_TOPIC_OUT !== "" && env.KAFKA_TOPIC_OUT === env.KAFKA_TOPIC_IN) {
    problems.push("KAFKA_TOPIC_OUT must differ from KAFKA_TOPIC_IN, or results would be consumed as new events");
  }
  return problems;
}

/** The key each provider needs, and the variable that holds it; the simulated provider needs none. */
const PROVIDER_KEYS: Readonly<Record<string, keyof Env>> = {
  openai: "OPENAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  cohere: "COHERE_API_KEY",
};

/**
 * Every provider a setting names must have its key: LLM_PROVIDER, EMBEDDING_PROVIDER=cohere, and the
 * `provider/` of each model in LLM_ROUTES, LLM_FALLBACKS and LLM_MODEL_RATE_LIMITS. Found at start, not
 * at the first task that falls back to it.
 */
function providerKeyProblems(env: Env): string[] {
  const problems: string[] = [];
  const need = (provider: string, where: string) => {
    const key = PROVIDER_KEYS[provider];
    if (key && !env[key]) problems.push(`${where} needs ${key} (set it, or name another provider)`);
  };
  if (env.LLM_PROVIDER && env.LLM_PROVIDER !== "openai") need(env.LLM_PROVIDER, `LLM_PROVIDER=${env.LLM_PROVIDER}`);
  if (env.EMBEDDING_PROVIDER === "cohere") need("cohere", "EMBEDDING_PROVIDER=cohere");
  const models: [string, string][] = [
    ...env.LLM_ROUTES.split(",").map((pair) => ["LLM_ROUTES", pair.split("=")[1] ?? ""] as [string, string]),
    ...env.LLM_FALLBACKS.split(/[,>]/).map((model) => ["LLM_FALLBACKS", model] as [string, string]),
    ...env.LLM_MODEL_RATE_LIMITS.split(",").map(
      (pair) => ["LLM_MODEL_RATE_LIMITS", pair.slice(0, pair.lastIndexOf("="))] as [string, string],
    ),
  ];
  for (const [variable, model] of models) {
    const provider = model.split("/")[0] ?? "";
    if (model.includes("/") && provider in PROVIDER_KEYS) need(provider, `${variable} (${model})`);
  }
  return [...new Set(problems)];
}

/**
 * Reads and validates the configuration. Throws ConfigError listing every
 * invalid variable; never falls back to a default for a value that was set.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(PROPERTIES)) {
    const value = source[key];
    if (value === undefined) continue;
    // An empty variable is what shells and .env files produce for "unset", so it is taken as unset,
    // unless the schema accepts "" and so gives it a meaning (KAFKA_TOPIC_OUT="" disables results).
    if (value.trim() === "" && !Value.Check(PROPERTIES[key] as TSchema, "")) continue;
    raw[key] = value.trim();
  }
  const converted = Value.Default(EnvSchema, toNumbers(raw));
  const problems = schemaProblems(converted, source);
  if (problems.length > 0) throw new ConfigError(problems);

  const env = converted as Env;
  let apiKeys: ApiKey[] | undefined;
  try {
    apiKeys = apiKeysOf(env);
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
  problems.push(...crossFieldProblems(env, apiKeys));
  if (problems.length > 0 || !apiKeys) throw new ConfigError(problems);
  return buildConfig(env, apiKeys);
}
