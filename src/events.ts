/**
 * Named events that the stages emit and that metrics (and logs, tests)
 * aggregate, so a stage knows nothing of /metrics. Synchronous and in-process:
 * a listener must be cheap (count, observe), never await I/O.
 */
/** A prompt experiment and one of its variants. */
export interface ExperimentRef {
  id: string;
  variant: string;
}

export interface EventMap {
  /** Jobs durably saved to a queue in one pipelined batch. */
  "enqueue.batch": { queue: string; size: number; ms: number };
  "task.accepted": { task_id: string; queue: string; task_type: string; source: "api" | "kafka" };
  "task.started": { task_id: string; queue: string; attempt: number };
  "task.succeeded": {
    task_id: string;
    queue: string;
    task_type: string;
    /** Time the worker spent on the task, ms. */
    processing_ms: number;
    /** From acceptance to result, ms: what a client waits. */
    latency_ms: number;
    from_cache: boolean;
    tokens: number;
    /** The prompt experiment's variant of the task (issue 17 §5), and what the variant's figures add up. */
    experiment?: ExperimentRef;
    /** The task's LLM cost at the price table, USD (0 for a cache hit); absent when unpriced. */
    cost_usd?: number;
  };
  "task.retried": { task_id: string; queue: string; code: string; delay_ms: number };
  "task.failed": { task_id: string; queue: string; code: string; experiment?: ExperimentRef };
  "llm.call": {
    provider: string;
    model: string;
    ms: number;
    ok: boolean;
    /** The provider's HTTP status of a failed call, when it answered one (429: its rate limit). */
    status?: number;
    prompt_tokens: number;
    completion_tokens: number;
    /** Who and what the cost is summed by in /metrics (issue 17 §4); absent from calls of before. */
    tenant?: string;
    task_type?: string;
    /** At the price table, nano-USD (an integer: HINCRBY); absent when unpriced. */
    cost_nano_usd?: number;
    /** Answered by a model of the fallback chain, not its first. */
    fallback?: boolean;
  };
  /** A model failed in a way another may fix; the next of its chain is asked. */
  "llm.fallback": { from: string; to: string; code: string };
  /** A model's circuit changed, or a call skipped a model whose circuit is open. */
  "llm.breaker": { model: string; change: "opened" | "reopened" | "closed" | "skipped" };
  /** One embeddings call; `tokens` estimated, `cost_nano_usd` at the configured embedding price. */
  "llm.embed": { provider: string; model: string; ms: number; inputs: number; tokens: number; cost_nano_usd: number };
  /**
   * The outcome of one cache lookup. `round_trips`: Redis round trips this
   * lookup caused, a pipelined KNN batch counting 1/batch size for each of its
   * lookups. A hit carries the estimated cost of the LLM call it saved.
   */
  "cache.lookup": {
    tier: "exact" | "semantic" | "single_flight" | "miss" | "bypass" | "error";
    ms: number;
    round_trips: number;
    similarity?: number;
    saved_nano_usd?: number;
  };
  /** A client's feedback on a task's answer; a wrong answer's cache entry was deleted (`invalidated`). */
  "task.feedback": {
    task_id: string;
    correct?: boolean;
    rating?: number;
    from_cache: boolean;
    invalidated: boolean;
    /** The experiment variant that answered, so its feedback score counts this one. */
    experiment?: ExperimentRef;
    /** The task's feedback before this one: the variant's score replaces it rather than counting both. */
    previous?: { correct?: boolean; rating?: number };
  };
  /** A semantic hit refused by the false-hit guard (false-hit-guard.ts), with its reason. */
  "cache.guard_refused": {
    reason: "numbers" | "identifiers" | "negation" | "substitution" | "order";
    similarity: number;
  };
  /** The KNN queries of one batch, sent in one pipeline. */
  "cache.knn_batch": { queries: number; ms: number };
  /** An answer offered to the cache: stored, or why not (admission policy). */
  "cache.store": { stored: boolean; reason: string };
  /** A Redis or embeddings failure inside the cache; the task went on without it. */
  "cache.error": { stage: "lookup" | "embed" | "knn" | "store" | "lock" };
  /** Concurrent misses of one key: one leader calls the LLM, followers wait for its answer. */
  "cache.single_flight": { role: "leader" | "follower" };
  "llm.rate_limited": { wait_ms: number };
  /** Counts of one consumer thread since its previous report (about every 500 ms). */
  "ingest.batch": {
    thread: number;
    consumed: number;
    enqueued: number;
    duplicates: number;
    dead_lettered: number;
    /** Events neither enqueued nor dead-lettered (a poison chunk the DLQ refused too). */
    skipped: number;
    batches: number;
    batch_ms: number[];
  };
  /** A consumer thread said ready, or died (the pool restarts it: one death is one restart). */
  "ingest.thread": { thread: number; state: "ready" | "died" };
  "ingest.paused": { reason: "operator" | "queue_high_watermark" | "llm_rate_limited" };
  "ingest.resumed": Record<string, never>;
  /** Outcomes of Kafka events produced to KAFKA_TOPIC_OUT in one send; `failures` of them FAILURE messages. */
  "ingest.results_out": { size: number; failures: number; ms: number; ok: boolean };
  /** A Kafka task's outcome could not be produced and no retry of its job is left to try again: it is not on the topic. */
  "ingest.results_unpublished": { task_id: string; status: "SUCCESS" | "FAILURE" };
  /** One webhook delivery attempt and what it led to (a skipped one, to a URL gone before, is `gone` too). */
  "webhook.attempt": { state: "delivered" | "retrying" | "failed" | "gone"; ms: number };
  /** A re-run published an outcome an earlier run had stored (and may have published already). */
  "ingest.results_republished": { task_id: string };
}

export type EventName = keyof EventMap;
type Listener<K extends EventName> = (payload: EventMap[K]) => void;

export interface EventBus {
  on<K extends EventName>(name: K, listener: Listener<K>): () => void;
  emit<K extends EventName>(name: K, payload: EventMap[K]): void;
}

export function createEventBus(): EventBus {
  const listeners = new Map<EventName, Set<(payload: never) => void>>();
  return {
    on(name, listener) {
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      set.add(listener as (payload: never) => void);
      return () => set.delete(listener as (payload: never) => void);
    },
    emit(name, payload) {
      const set = listeners.get(name);
      if (!set) return;
      for (const listener of set) (listener as Listener<typeof name>)(payload);
    },
  };
}
