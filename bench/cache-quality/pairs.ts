/**
 * The labelled pair set of `bun bench cache-quality` (bench/data/cache-pairs.json,
 * described in bench/data/README.md): two texts, and whether one answer serves
 * both. Loaded and checked here, so the scenario and the unit test read it the
 * same way.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const SAME_KINDS = ["reorder", "synonym", "register", "typo", "cross_lingual", "surface"] as const;
export const DIFFERENT_KINDS = [
  "negation_word",
  "negation_affix",
  "negation_contraction",
  "antonym",
  "number_sign",
  "number_unit",
  "number_percent",
  "date",
  "identifier",
  "swapped_entity",
  "swapped_roles",
  "target_language",
  "near_topic",
] as const;
export type PairKind = (typeof SAME_KINDS)[number] | (typeof DIFFERENT_KINDS)[number];

export interface LabelledPair {
  a: string;
  b: string;
  task_type: string;
  /** true: A's answer is a right answer to B. */
  same: boolean;
  kind: PairKind;
  lang: "en" | "es";
  source: string;
}

export const PAIRS_PATH = join(import.meta.dir, "..", "data", "cache-pairs.json");

/** What is wrong with the set, one line per problem; empty when it is well-formed. */
export function pairSetProblems(value: unknown): string[] {
  if (!Array.isArray(value)) return ["the file is not a JSON array"];
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((item, i) => {
    const p = item as Partial<LabelledPair>;
    const at = `pair ${i}`;
    if (typeof p !== "object" || p === null) {
      problems.push(`${at}: not an object`);
      return;
    }
    for (const field of ["a", "b", "source"] as const)
      if (typeof p[field] !== "string" || p[field].trim() === "")
        problems.push(`${at}: ${field} must be a non-empty string`);
    if (typeof p.task_type !== "string" || !/^[a-z_]+$/.test(p.task_type))
      problems.push(`${at}: task_type must be lowercase letters and _`);
    if (typeof p.same !== "boolean") problems.push(`${at}: same must be a boolean`);
    const kinds: readonly string[] = p.same ? SAME_KINDS : DIFFERENT_KINDS;
    if (!kinds.includes(p.kind as string))
      problems.push(`${at}: kind "${p.kind}" is not a ${p.same ? "same" : "different"}-answer kind`);
    if (p.lang !== "en" && p.lang !== "es") problems.push(`${at}: lang must be en or es`);
    if (p.a === p.b) problems.push(`${at}: a and b are the same text`);
    const key = JSON.stringify([p.task_type, p.a, p.b]);
    if (seen.has(key)) problems.push(`${at}: duplicate of an earlier pair`);
    seen.add(key);
  });
  return problems;
}

export function loadPairs(path = PAIRS_PATH): LabelledPair[] {
  const value: unknown = JSON.parse(readFileSync(path, "utf8"));
  const problems = pairSetProblems(value);
  if (problems.length > 0) throw new Error(`${path}: ${problems.slice(0, 5).join("; ")}`);
  return value as LabelledPair[];
}

/** n pairs spread evenly over the set (it is grouped by kind), so a small run still sees every kind it can. */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (n >= items.length) return [...items];
  return Array.from({ length: n }, (_, k) => items[Math.floor((k * items.length) / n)] as T);
}
