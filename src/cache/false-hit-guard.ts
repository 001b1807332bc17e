/**
 * A guard against semantic false hits. Embeddings place a question and its
 * negation, or "2 tablets" and "20 tablets", at cosine 0.9 or more (users of
 * RedisVL, GPTCache and LangCache report 0.83–0.99), so a similarity
 * threshold alone serves the wrong answer. Before a semantic hit is served,
 * both texts must carry the same numbers and the same negations; otherwise
 * the hit is refused (and counted) and the task goes to the LLM.
 *
 * Deliberately lexical and cheap (no model): it runs on every semantic hit.
 * It errs on the side of refusing, which costs one LLM call, never a wrong
 * answer.
 */

/**
 * Negation markers of the languages this product is fed (English, Spanish,
 * plus the common Romance and Germanic forms). Contractions ("isn't",
 * "don't") are caught by the n't rule below.
 */
const NEGATIONS = new Set([
  // English
  "not",
  "no",
  "never",
  "none",
  "nor",
  "neither",
  "nothing",
  "nobody",
  "nowhere",
  "cannot",
  "without",
  // Spanish, Portuguese, Italian, French
  "nunca",
  "jamas",
  "ni",
  "nada",
  "nadie",
  "ninguno",
  "ninguna",
  "ningun",
  "sin",
  "tampoco",
  "nao",
  "non",
  "mai",
  "senza",
  "pas",
  "jamais",
  "sans",
  // German, Dutch
  "nicht",
  "kein",
  "keine",
  "nie",
  "niet",
  "geen",
]);

export interface GuardFeatures {
  /** Numbers as written, normalised ("2", "2.5", "20"), sorted. */
  readonly numbers: readonly string[];
  /** Negation markers found, sorted (a multiset: "not ... not" differs from "not"). */
  readonly negations: readonly string[];
}

/** Accents folded, lower case: "Jamás" and "jamas" are one marker. */
function fold(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase();
}

export function guardFeatures(text: string): GuardFeatures {
  const folded = fold(text);
  // 1,000 and 1000 are the same number; 2.5 and 2,5 too (decimal comma).
  const numbers = (folded.match(/\d+(?:[.,]\d+)*/g) ?? [])
    .map((n) => n.replace(/,(?=\d{3}(?:\D|$))/g, "").replace(",", "."))
    .map((n) => n.replace(/^0+(?=\d)/, ""))
    .sort();
  const negations: string[] = [];
  for (const word of folded.split(/[^\p{L}\p{N}']+/u)) {
    if (word === "") continue;
    if (NEGATIONS.has(word)) negations.push(word);
    else if (word.endsWith("n't")) negations.push("not");
  }
  negations.sort();
  return { numbers, negations };
}

export type GuardVerdict = { ok: true } | { ok: false; reason: "numbers" | "negation" };

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether a cached answer to `cached` may be served for `asked`. */
export function checkSemanticHit(asked: string, cached: string): GuardVerdict {
  const a = guardFeatures(asked);
  const b = guardFeatures(cached);
  if (!sameList(a.numbers, b.numbers)) return { ok: false, reason: "numbers" };
  // "no" and "not" are both negations: compare how many, not which words.
  if (a.negations.length !== b.negations.length) return { ok: false, reason: "negation" };
  return { ok: true };
}
