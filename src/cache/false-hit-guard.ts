/**
 * A guard against semantic false hits. Embeddings place a question and its
 * negation, or "2 tablets" and "20 tablets", at cosine 0.9 or more (users of
 * RedisVL, GPTCache and LangCache report 0.83–0.99; multilingual-e5-small
 * scored "is it safe" / "is it not safe" 0.989 here), so a similarity
 * threshold alone serves the wrong answer. Before a semantic hit is served,
 * both texts must carry the same numbers (with their sign and unit), the same
 * identifiers (AB-7731, 12B), and the same negations, by word ("not"), by
 * contraction ("wasn't", "wasn’t", "wasnt") or by affix ("unsafe",
 * "dislike", "inseguro"); otherwise the hit is refused (counted by reason)
 * and the task goes to the LLM.
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

/** English contractions written without their apostrophe, as people type them ("wasnt", "dont"). */
const BARE_CONTRACTIONS = new Set([
  "isnt",
  "arent",
  "wasnt",
  "werent",
  "dont",
  "doesnt",
  "didnt",
  "cant",
  "couldnt",
  "wont",
  "wouldnt",
  "shouldnt",
  "hasnt",
  "havent",
  "hadnt",
  "mustnt",
  "neednt",
]);

/**
 * Prefixes that negate a word in English and Spanish: "unsafe", "dislike",
 * "illegal", "inedible", "incorrect", "nonfat", "inseguro", "deshacer". A word
 * of one text that is a word of the other with one of these in front flips
 * the meaning while the vectors stay close.
 */
const NEGATING_PREFIXES = ["un", "in", "im", "il", "ir", "dis", "non", "non-", "des", "a"];

/**
 * Units that change a number's meaning ("5 mg" is not "5 g", "10 %" is not
 * "10"). A number keeps the unit written right after it, with or without a space.
 */
const UNITS = new Set([
  "%",
  "mg",
  "mcg",
  "ug",
  "µg",
  "g",
  "kg",
  "lb",
  "lbs",
  "oz",
  "ml",
  "l",
  "cl",
  "dl",
  "mm",
  "cm",
  "m",
  "km",
  "mi",
  "ft",
  "in",
  // Not bare "c" or "f": "12C" is a room more often than a temperature, and an identifier anyway.
  "°c",
  "°f",
  "ms",
  "s",
  "min",
  "h",
  "hr",
  "hrs",
  "am",
  "pm",
  "k",
  "m²",
  "usd",
  "eur",
  "mb",
  "gb",
  "tb",
]);

export interface GuardFeatures {
  /** Numbers as written, normalised, with their sign and unit ("-5", "2.5", "5mg", "10%"), sorted. */
  readonly numbers: readonly string[];
  /** Tokens that mix letters and digits, such as order or room ids ("ab-7731", "12b"), sorted. */
  readonly identifiers: readonly string[];
  /** Negation markers found, sorted (a multiset: "not ... not" differs from "not"). */
  readonly negations: readonly string[];
  /** Content words (two letters or more), for the affix rule. */
  readonly words: ReadonlySet<string>;
}

/** Accents folded, lower case, typographic apostrophes made plain: "Jamás" and "jamas" are one marker. */
function fold(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[\u2018\u2019\u02bc\u2032`´]/g, "'")
    .toLowerCase();
}

const NUMBER = /(^|[^\p{L}\p{N}.,-])(-|\u2212)?(\d+(?:[.,]\d+)*)\s?(%|°[cf]|[\p{L}µ²]+)?/gu;
const IDENTIFIER = /(?<![\p{L}\p{N}])(?=[\p{L}\p{N}-]*\p{L})(?=[\p{L}\p{N}-]*\d)[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*/gu;

export function guardFeatures(text: string): GuardFeatures {
  const folded = fold(text);
  const numbers: string[] = [];
  for (const [, , sign, digits = "", unit] of folded.matchAll(NUMBER)) {
    // 1,000 and 1000 are the same number; 2.5 and 2,5 too (decimal comma).
    const value = digits
      .replace(/,(?=\d{3}(?:\D|$))/g, "")
      .replace(",", ".")
      .replace(/^0+(?=\d)/, "");
    const negative = sign !== undefined && value.replace(/[0.]/g, "") !== "";
    numbers.push(`${negative ? "-" : ""}${value}${unit !== undefined && UNITS.has(unit) ? unit : ""}`);
  }
  numbers.sort();
  const identifiers = (folded.match(IDENTIFIER) ?? [])
    .filter((token) => !/^\d+(?:[.,]\d+)*\p{L}+$/u.test(token) || !UNITS.has(token.replace(/^[\d.,]+/, "")))
    .sort();
  const negations: string[] = [];
  const words = new Set<string>();
  for (const word of folded.split(/[^\p{L}\p{N}']+/u)) {
    if (word === "") continue;
    if (NEGATIONS.has(word)) negations.push(word);
    else if (word.endsWith("n't") || BARE_CONTRACTIONS.has(word)) negations.push("not");
    else if (word.length >= 2 && /^\p{L}+$/u.test(word)) words.add(word);
  }
  negations.sort();
  return { numbers, identifiers, negations, words };
}

/** Whether one text has a word that the other has with a negating prefix ("safe" / "unsafe"). */
function affixNegated(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  const onlyIn = (x: ReadonlySet<string>, y: ReadonlySet<string>) => [...x].filter((word) => !y.has(word));
  const onlyA = onlyIn(a, b);
  const onlyB = new Set(onlyIn(b, a));
  const onlyASet = new Set(onlyA);
  for (const word of onlyA) {
    for (const prefix of NEGATING_PREFIXES) {
      // Stems of 3+ letters: "a" + "nother" is not a negation of anything worth the risk.
      if (word.length >= 3 && (onlyB.has(prefix + word) || onlyB.has(`${prefix}-${word}`))) return true;
      if (word.startsWith(prefix) && word.length - prefix.length >= 3) {
        const stem = word.slice(prefix.length).replace(/^-/, "");
        if (onlyB.has(stem) && !onlyASet.has(stem)) return true;
      }
    }
  }
  return false;
}

export type GuardVerdict = { ok: true } | { ok: false; reason: "numbers" | "identifiers" | "negation" };

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether a cached answer to `cached` may be served for `asked`. */
export function checkSemanticHit(asked: string, cached: string): GuardVerdict {
  const a = guardFeatures(asked);
  const b = guardFeatures(cached);
  if (!sameList(a.numbers, b.numbers)) return { ok: false, reason: "numbers" };
  if (!sameList(a.identifiers, b.identifiers)) return { ok: false, reason: "identifiers" };
  // "no" and "not" are both negations: compare how many, not which words.
  if (a.negations.length !== b.negations.length) return { ok: false, reason: "negation" };
  if (affixNegated(a.words, b.words)) return { ok: false, reason: "negation" };
  return { ok: true };
}
