/**
 * A guard against semantic false hits. Embeddings place a question and its
 * negation, or "2 tablets" and "20 tablets", at cosine 0.9 or more (users of
 * RedisVL, GPTCache and LangCache report 0.83–0.99; multilingual-e5-small
 * scored "is it safe" / "is it not safe" 0.989 here), so a similarity
 * threshold alone serves the wrong answer. Before a semantic hit is served,
 * both texts must carry the same numbers (with their sign and unit), the same
 * identifiers (AB-7731, 12B), and the same negations, by word ("not"), by
 * contraction ("wasn't", "wasn’t", "wasnt") or by affix ("unsafe",
 * "dislike", "inseguro"); nor may one be the other with one or two content
 * words substituted ("router" / "password", "French" / "German") or two
 * swapped ("buyer pays seller" / "seller pays buyer"). Otherwise the hit is
 * refused (counted by reason) and the task goes to the LLM.
 *
 * Deliberately lexical and cheap (no model): it runs on every semantic hit.
 * It errs on the side of refusing, which costs one LLM call, never a wrong
 * answer.
 */

import {
  ANTONYMS,
  ARTICLES,
  BARE_CONTRACTIONS,
  CALENDAR,
  FUNCTION_WORDS,
  NEGATING_PREFIXES,
  NEGATIONS,
  UNITS,
} from "./guard-lexicon";

export interface GuardFeatures {
  /** Numbers as written, normalised, with their sign and unit ("-5", "2.5", "5mg", "10%"), sorted. */
  readonly numbers: readonly string[];
  /** Tokens that mix letters and digits, such as order or room ids ("ab-7731", "12b"), sorted. */
  readonly identifiers: readonly string[];
  /** Negation markers found, sorted (a multiset: "not ... not" differs from "not"). */
  readonly negations: readonly string[];
  /** Content words (two letters or more), for the affix rule. */
  readonly words: ReadonlySet<string>;
  /** Content words in order, function words left out: for the substitution rule. */
  readonly content: readonly string[];
  /** Every word and number in order, articles left out: for the swap rule (prepositions are its pivots). */
  readonly ordered: readonly string[];
  /** Arithmetic operators standing alone ("x + 4", "x - 4"), in order. */
  readonly operators: readonly string[];
  /** Months and weekdays named, sorted. */
  readonly calendar: readonly string[];
}

/** Accents folded, lower case, typographic apostrophes made plain: "Jamás" and "jamas" are one marker. */
function fold(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[\u2018\u2019\u02bc\u2032`´]/g, "'")
    .toLowerCase();
}

/** 1,000 and 1000 are the same number; 2.5 and 2,5 too (decimal comma); 007 is 7. */
function normaliseNumber(digits: string): string {
  return digits
    .replace(/,(?=\d{3}(?:\D|$))/g, "")
    .replace(",", ".")
    .replace(/^0+(?=\d)/, "");
}

const NUMBER = /(^|[^\p{L}\p{N}.,-])(-|\u2212)?(\d+(?:[.,]\d+)*)\s?(%|°[cf]|[\p{L}µ²]+)?/gu;
const IDENTIFIER =
  /(?<![\p{L}\p{N}])(?:(?=[\p{L}\p{N}-]*\p{L})(?=[\p{L}\p{N}-]*\d)[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*|[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)+)/gu;

export function guardFeatures(text: string): GuardFeatures {
  const folded = fold(text);
  const numbers: string[] = [];
  for (const [, , sign, digits = "", unit] of folded.matchAll(NUMBER)) {
    const value = normaliseNumber(digits);
    const negative = sign !== undefined && value.replace(/[0.]/g, "") !== "";
    numbers.push(`${negative ? "-" : ""}${value}${unit !== undefined && UNITS.has(unit) ? unit : ""}`);
  }
  numbers.sort();
  const identifiers = (folded.match(IDENTIFIER) ?? [])
    // A hyphenated code has a short segment ("tsh-red-m"); "calidad-precio" and "two-factor" are words.
    .filter((token) => /\d/.test(token) || token.split("-").some((segment) => segment.length <= 3))
    .filter((token) => !/^\d+(?:[.,]\d+)*\p{L}+$/u.test(token) || !UNITS.has(token.replace(/^[\d.,]+/, "")))
    .sort();
  const negations: string[] = [];
  const words = new Set<string>();
  const content: string[] = [];
  const ordered: string[] = [];
  const calendar: string[] = [];
  const operators = [...folded.matchAll(/(?:^|\s)([-+*/×÷=<>≤≥−])(?=\s)/g)].map((m) =>
    m[1] === "−" ? "-" : (m[1] as string),
  );
  const tokens = folded.split(/[^\p{L}\p{N}']+/u).filter((token) => token !== "");
  // For the order of words, each number is one token ("1,000" and "1000" alike), never its digit groups.
  const numbered = folded.replace(/\d+(?:[.,]\d+)*/g, (n) => ` #${normaliseNumber(n)} `);
  for (const token of numbered.split(/[^\p{L}\p{N}'#.]+/u)) {
    // "al" and "del" are Spanish's a + el and de + el: the same pivot as "a" and "de".
    if (token !== "" && !ARTICLES.has(token)) ordered.push(token === "al" ? "a" : token === "del" ? "de" : token);
  }
  for (const [index, word] of tokens.entries()) {
    const nextToNumber = /^\d+$/.test(tokens[index - 1] ?? "") || /^\d+$/.test(tokens[index + 1] ?? "");
    if (CALENDAR.has(word) || (word === "may" && nextToNumber)) calendar.push(word);
    if (NEGATIONS.has(word)) negations.push(word);
    else if (word.endsWith("n't") || BARE_CONTRACTIONS.has(word)) negations.push("not");
    else if (word.length >= 2 && /^\p{L}+$/u.test(word)) {
      words.add(word);
      if (!FUNCTION_WORDS.has(word)) content.push(word);
    }
  }
  negations.sort();
  calendar.sort();
  return { numbers, identifiers, negations, words, content, ordered, operators, calendar };
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

/**
 * Two spellings of one word: a typo or an inflection ("recieve"/"receive",
 * "fsat"/"fast", "order"/"orders"). Optimal-string-alignment distance (a
 * swap of two letters is one edit) of at most 1, or 2 for words of 8+
 * letters; or one word the other plus up to two letters. Close names stay
 * apart: "Australia"/"Austria" is 2 edits at 7 letters.
 */
function sameWord(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  if (long.length - short.length > 2) return false;
  // Short words: only a doubled or dropped last letter ("wel"/"well"); "in"/"on" stay apart.
  if (short.length < 4) return short.length === 3 && long.length === 4 && long.startsWith(short);
  if (long.startsWith(short)) return true;
  const limit = short.length >= 8 ? 2 : 1;
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (rows[i - 1]?.[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (rows[i - 1]?.[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (rows[i - 2]?.[j - 2] as number) + 1);
      }
      row[j] = best;
    }
    rows.push(row);
  }
  return (rows[a.length]?.[b.length] as number) <= limit;
}

/**
 * Two near-identical texts whose difference is one or two content words
 * swapped for others: "reset my router" / "reset my password", "capital of
 * Australia" / "of Austria", "into French" / "into German", "increase" /
 * "decrease", "Monday" / "Tuesday". That is where meaning flips while the
 * vectors stay close (e5 scores such pairs as high as paraphrases). It also
 * refuses some one-word synonym paraphrases ("cancel" / "terminate"): one
 * LLM call, never a wrong answer.
 */
function substituted(a: readonly string[], b: readonly string[]): boolean {
  const onlyA = [...new Set(a)].filter((word) => !b.some((other) => sameWord(word, other)));
  const onlyB = [...new Set(b)].filter((word) => !a.some((other) => sameWord(word, other)));
  const shared = a.filter((word) => b.includes(word)).length;
  // One or two words swapped for others; three when at least two others are shared ("the biography of Gabriel
  // García Márquez" / "of Julio Cortázar").
  const most = shared >= 2 ? 3 : 2;
  return shared >= 1 && onlyA.length >= 1 && onlyA.length <= most && onlyB.length >= 1 && onlyB.length <= most;
}

/**
 * The same content words with two of them swapped: "did the buyer pay the
 * seller" / "the seller pay the buyer", "from Madrid to London" / "from
 * London to Madrid". A reordered clause moves whole runs of words, never
 * exactly two.
 */
function swapped(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length || a.length < 2) return false;
  let first = 0;
  while (first < a.length && a[first] === b[first]) first++;
  if (first === a.length) return false;
  let last = a.length - 1;
  while (a[last] === b[last]) last--;
  const windowA = a.slice(first, last + 1);
  const windowB = b.slice(first, last + 1);
  const same = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((w, i) => w === y[i]);
  // X P Y against Y P X: two short runs exchanged around a pivot ("Madrid [to] London", "buyer [pay] seller").
  // A pivot is required: two clauses exchanged around nothing ("the food was great but the service was slow" /
  // "the service was slow, but the food was great") keep their meaning.
  for (let x = 1; x < windowA.length; x++) {
    for (let p = 1; x + p < windowA.length; p++) {
      const y = windowA.length - x - p;
      if (y < 1) break;
      const [runX, pivot, runY] = [windowA.slice(0, x), windowA.slice(x, x + p), windowA.slice(x + p)];
      if (same(windowB, [...runY, ...pivot, ...runX]) && runX.length + runY.length <= 4) return true;
    }
  }
  return false;
}

/** One text has a word and the other its opposite (ANTONYMS), each missing from the other. */
function opposed(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return ANTONYMS.some(
    ([x, y]) => (a.has(x) && b.has(y) && !a.has(y) && !b.has(x)) || (a.has(y) && b.has(x) && !a.has(x) && !b.has(y)),
  );
}

export type GuardVerdict =
  | { ok: true }
  | { ok: false; reason: "numbers" | "identifiers" | "negation" | "substitution" | "order" };

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether a cached answer to `cached` may be served for `asked`. */
export function checkSemanticHit(asked: string, cached: string): GuardVerdict {
  const a = guardFeatures(asked);
  const b = guardFeatures(cached);
  if (!sameList(a.numbers, b.numbers)) return { ok: false, reason: "numbers" };
  if (!sameList(a.identifiers, b.identifiers)) return { ok: false, reason: "identifiers" };
  // "no" and "not" are both negations: compare how many, not which words.
  if (a.negations.length !== b.negations.length) return { ok: false, reason: "negation" };
  if (!sameList(a.operators, b.operators)) return { ok: false, reason: "numbers" };
  if (!sameList(a.calendar, b.calendar)) return { ok: false, reason: "numbers" };
  if (affixNegated(a.words, b.words)) return { ok: false, reason: "negation" };
  if (opposed(a.words, b.words)) return { ok: false, reason: "substitution" };
  if (swapped(a.ordered, b.ordered)) return { ok: false, reason: "order" };
  if (substituted(a.content, b.content)) return { ok: false, reason: "substitution" };
  return { ok: true };
}
