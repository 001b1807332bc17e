/**
 * The model router's share of the metrics (issue 17 §3, §4): calls, tokens
 * and cost summed per tenant, provider, model and task type; fallbacks per
 * pair of models; circuit breaker changes per model. Counters of
 * `{prefix}:counters` whose field names carry their labels:
 *
 *   llm_by:["tenant","provider","model","task_type"]:{calls|errors|fallback_answers|prompt_tokens|completion_tokens|cost_nano_usd}
 *   llm_fallback:["from","to"]       llm_breaker:["model","change"]
 *
 * Money is integer nano-USD, as the cache's (HINCRBY takes integers). The
 * label sets stay small: tenants are API key names, models what the
 * configuration routes to, task types those with a prompt.
 */
import { Type as t } from "@sinclair/typebox";
import type { EventBus } from "../events";

const NANO_PER_USD = 1e9;
const Count = t.Integer({ minimum: 0 });
const BY_METRICS = [
  "calls",
  "errors",
  "fallback_answers",
  "prompt_tokens",
  "completion_tokens",
  "cost_nano_usd",
] as const;

export const LlmCostsSchema = t.Object(
  {
    total_usd: t.Number({
      description: "every LLM call's cost at the price table (LLM_PRICES_FILE over the built-in)",
    }),
    by: t.Array(
      t.Object({
        tenant: t.String({ description: "the API key's name; empty without auth or for Kafka events of no tenant" }),
        provider: t.String(),
        model: t.String({ description: "the model as routed (the configuration's name, no date suffix)" }),
        task_type: t.String(),
        calls: t.Integer({ minimum: 0, description: "calls that answered" }),
        errors: t.Integer({ minimum: 0, description: "calls that failed after their fallbacks" }),
        fallback_answers: t.Integer({ minimum: 0, description: "of calls, those a fallback model answered" }),
        prompt_tokens: Count,
        completion_tokens: Count,
        cost_usd: t.Number(),
      }),
    ),
  },
  { description: "LLM cost per tenant, provider, model and task type, across every worker process (issue 17)" },
);

export const LlmRoutingSchema = t.Object(
  {
    fallbacks: t.Integer({ minimum: 0, description: "times a model failed and the next of its chain was asked" }),
    fallback_pairs: t.Array(t.Object({ from: t.String(), to: t.String(), count: Count })),
    breakers: t.Array(
      t.Object({
        model: t.String({ description: "provider/model" }),
        opened: t.Integer({ minimum: 0, description: "times its circuit opened after consecutive failures" }),
        reopened: t.Integer({ minimum: 0, description: "probes that failed, keeping it open" }),
        closed: t.Integer({ minimum: 0, description: "times a success closed it" }),
        skipped: t.Integer({ minimum: 0, description: "calls that skipped the model while its circuit was open" }),
      }),
    ),
  },
  { description: "fallbacks and circuit breakers of the model router (issue 17)" },
);

export function subscribeLlmMetrics(bus: EventBus, add: (field: string, n?: number) => void): (() => void)[] {
  return [
    bus.on("llm.call", (e) => {
      if (e.task_type === undefined) return;
      const by = `llm_by:${JSON.stringify([e.tenant ?? "", e.provider, e.model, e.task_type])}`;
      add(`${by}:${e.ok ? "calls" : "errors"}`);
      if (!e.ok) return;
      if (e.fallback) add(`${by}:fallback_answers`);
      add(`${by}:prompt_tokens`, e.prompt_tokens);
      add(`${by}:completion_tokens`, e.completion_tokens);
      if (e.cost_nano_usd) {
        add(`${by}:cost_nano_usd`, e.cost_nano_usd);
        add("llm_cost_nano_usd", e.cost_nano_usd);
      }
    }),
    bus.on("llm.fallback", (e) => {
      add("llm_fallbacks");
      add(`llm_fallback:${JSON.stringify([e.from, e.to])}`);
    }),
    bus.on("llm.breaker", (e) => add(`llm_breaker:${JSON.stringify([e.model, e.change])}`)),
  ];
}

const usd = (nano: number) => Math.round(nano) / NANO_PER_USD;

/** The fields of `counters` under `prefix`, as [their JSON labels, the rest of the name, the value]. */
function labelled(counters: Record<string, string>, prefix: string): [string[], string, number][] {
  const out: [string[], string, number][] = [];
  for (const [field, raw] of Object.entries(counters)) {
    if (!field.startsWith(prefix)) continue;
    const end = field.lastIndexOf("]") + 1;
    try {
      out.push([JSON.parse(field.slice(prefix.length, end)) as string[], field.slice(end + 1), Number(raw) || 0]);
    } catch {
      // A field of another shape under the prefix is no label set of ours: skipped.
    }
  }
  return out;
}

export function llmCostsSnapshot(counters: Record<string, string>): typeof LlmCostsSchema.static {
  const groups = new Map<string, Record<(typeof BY_METRICS)[number], number> & { labels: string[] }>();
  for (const [labels, metric, value] of labelled(counters, "llm_by:")) {
    if (!(BY_METRICS as readonly string[]).includes(metric)) continue;
    const key = JSON.stringify(labels);
    const group = groups.get(key) ?? {
      labels,
      ...(Object.fromEntries(BY_METRICS.map((m) => [m, 0])) as Record<(typeof BY_METRICS)[number], number>),
    };
    group[metric as (typeof BY_METRICS)[number]] += value;
    groups.set(key, group);
  }
  const by = [...groups.values()].map(({ labels, cost_nano_usd, ...counts }) => {
    const [tenant = "", provider = "", model = "", taskType = ""] = labels;
    return { tenant, provider, model, task_type: taskType, ...counts, cost_usd: usd(cost_nano_usd) };
  });
  by.sort((a, b) => b.cost_usd - a.cost_usd || b.calls - a.calls);
  return { total_usd: usd(Number(counters.llm_cost_nano_usd ?? 0)), by };
}

export function llmRoutingSnapshot(counters: Record<string, string>): typeof LlmRoutingSchema.static {
  const breakers = new Map<
    string,
    { model: string; opened: number; reopened: number; closed: number; skipped: number }
  >();
  for (const [[model = "", change = ""], , value] of labelled(counters, "llm_breaker:")) {
    const entry = breakers.get(model) ?? { model, opened: 0, reopened: 0, closed: 0, skipped: 0 };
    if (change === "opened" || change === "reopened" || change === "closed" || change === "skipped")
      entry[change] += value;
    breakers.set(model, entry);
  }
  return {
    fallbacks: Number(counters.llm_fallbacks ?? 0) || 0,
    fallback_pairs: labelled(counters, "llm_fallback:").map(([[from = "", to = ""], , count]) => ({ from, to, count })),
    breakers: [...breakers.values()],
  };
}
