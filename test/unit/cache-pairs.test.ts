import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { DIFFERENT_KINDS, loadPairs, PAIRS_PATH, pairSetProblems, SAME_KINDS } from "../../bench/cache-quality/pairs";

describe("the labelled pair set of bun bench cache-quality", () => {
  const pairs = loadPairs();

  test("has at least 400 well-formed pairs and no duplicates", () => {
    expect(pairSetProblems(JSON.parse(readFileSync(PAIRS_PATH, "utf8")))).toEqual([]);
    expect(pairs.length).toBeGreaterThanOrEqual(400);
  });

  test("has at least 30 pairs of every different-answer kind", () => {
    for (const kind of DIFFERENT_KINDS) expect(pairs.filter((p) => p.kind === kind).length).toBeGreaterThanOrEqual(30);
  });

  test("has every same-answer kind, in Spanish and in English", () => {
    for (const kind of SAME_KINDS) expect(pairs.some((p) => p.kind === kind)).toBe(true);
    for (const lang of ["en", "es"] as const) {
      expect(pairs.some((p) => p.lang === lang && p.same)).toBe(true);
      expect(pairs.some((p) => p.lang === lang && !p.same)).toBe(true);
    }
  });

  test("the check names a duplicate, a wrong kind and a missing field", () => {
    const pair = { a: "x", b: "y", task_type: "classification", same: true, kind: "typo", lang: "en", source: "t" };
    const problems = pairSetProblems([pair, pair, { ...pair, b: "z", kind: "antonym" }, { ...pair, b: "w", a: "" }]);
    expect(problems.some((p) => p.includes("duplicate"))).toBe(true);
    expect(problems.some((p) => p.includes('kind "antonym"'))).toBe(true);
    expect(problems.some((p) => p.includes("a must be a non-empty string"))).toBe(true);
  });
});
