/**
 * Example events for `bun run produce`, the tests and the benchmark: keyed by
 * user id, with a chosen share of exact duplicate texts (cache hits) and
 * near duplicates (semantic cache candidates), of a chosen size, optionally
 * with a share of malformed events (not JSON, failing the schema, or of an
 * unknown task type) for the DLQ. Deterministic for a given seed, so runs can be compared.
 */
export interface GeneratedEvent {
  key: string;
  value: string;
  /** The event's event_id, or undefined for a malformed one. */
  eventId: string | undefined;
  malformed: "not_json" | "schema" | "unknown_task_type" | undefined;
}

export interface GeneratorOptions {
  count: number;
  /** Prefix of event ids, so runs do not collide. */
  idPrefix: string;
  /** Share 0..1 of events whose text repeats an earlier one exactly. */
  duplicateShare?: number;
  /** Share 0..1 of events whose text is an earlier one with a word changed. */
  nearDuplicateShare?: number;
  /** Share 0..1 of malformed events: a third not JSON, a third failing the schema, a third of an unknown task type. */
  malformedShare?: number;
  /** Approximate size of each event's JSON, bytes. */
  bytes?: number;
  users?: number;
  taskTypes?: readonly string[];
  seed?: number;
}

const WORDS =
  "the order arrived late but support was quick and friendly refund product quality price delivery package broken excellent terrible service app update crash login payment".split(
    " ",
  );

/** A small, fast PRNG (mulberry32): the same seed gives the same events. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function* generateEvents(options: GeneratorOptions): Generator<GeneratedEvent> {
  const {
    count,
    idPrefix,
    duplicateShare = 0,
    nearDuplicateShare = 0,
    malformedShare = 0,
    bytes = 200,
    users = 1000,
    taskTypes = ["sentiment_analysis", "summarization", "classification", "general_analysis"],
    seed = 42,
  } = options;
  const next = random(seed);
  const texts: string[] = [];
  const sentence = (length: number) => {
    const words: string[] = [];
    let size = 0;
    while (size < length) {
      const word = WORDS[Math.floor(next() * WORDS.length)] ?? "event";
      words.push(word);
      size += word.length + 1;
    }
    return words.join(" ");
  };
  // Room for the envelope (ids, task type, metadata) in the target size.
  const textBytes = Math.max(16, bytes - 150);
  for (let i = 0; i < count; i++) {
    const key = `user-${Math.floor(next() * users)}`;
    const roll = next();
    if (roll < malformedShare) {
      const kind = next();
      const id = `${idPrefix}-${i}`;
      yield kind < 1 / 3
        ? { key, value: `{"event_id": "${id}", "text": `, eventId: undefined, malformed: "not_json" }
        : kind < 2 / 3
          ? { key, value: JSON.stringify({ event_id: id, text: "" }), eventId: undefined, malformed: "schema" }
          : {
              key,
              value: JSON.stringify({ event_id: id, text: "translate me", task_type: "no_such_task_type" }),
              eventId: undefined,
              malformed: "unknown_task_type",
            };
      continue;
    }
    const pick = next();
    let text: string;
    if (texts.length > 0 && pick < duplicateShare) text = texts[Math.floor(next() * texts.length)] ?? "";
    else if (texts.length > 0 && pick < duplicateShare + nearDuplicateShare) {
      const base = texts[Math.floor(next() * texts.length)] ?? "";
      text = `${base} ${WORDS[Math.floor(next() * WORDS.length)]}`;
    } else {
      text = `${i} ${sentence(textBytes)}`;
      if (texts.length < 10_000) texts.push(text);
    }
    const eventId = `${idPrefix}-${i}`;
    yield {
      key,
      eventId,
      malformed: undefined,
      value: JSON.stringify({
        event_id: eventId,
        text,
        task_type: taskTypes[Math.floor(next() * taskTypes.length)],
        metadata: { user_id: key, source: "generator" },
        timestamp: new Date().toISOString(),
      }),
    };
  }
}
