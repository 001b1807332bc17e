/**
 * The `cache-quality` section of a result: its JSON shape, the terminal
 * lines and the HTML (per-kind table, precision/recall sweep drawn with the
 * shared SVG chart, the calibration).
 */
import { escapeXml, lineChart } from "../report/svg-chart";
import type { Calibration, KindRow, SweepPoint } from "./analysis";
import type { HttpPathReport } from "./http-path";

export interface CacheQualityReport {
  embeddingModel: string;
  embeddingDim: number;
  threshold: number;
  pairs: number;
  /** No LLM verification of a semantic hit exists yet: only the threshold and the lexical guard are measured. */
  safeguards: string;
  /** What was measured (--path): the cache module directly, the app over HTTP, or both. */
  paths: ("module" | "http")[];
  /** The module path's rates; absent with --path http (kinds and sweep are then empty). */
  falseHitRate?: { thresholdOnly: number; withGuard: number };
  paraphraseHitRate?: { thresholdOnly: number; withGuard: number };
  kinds: KindRow[];
  sweep: SweepPoint[];
  calibration?: Calibration[];
  calibrationEnv?: string;
  /** The pairs through the app (POST A, then B; B's from_cache and cache_tier), with --path http|both. */
  http?: HttpPathReport;
}

const pct = (rate: number) => `${(rate * 100).toFixed(1)} %`;

function kindLines(q: CacheQualityReport): string[][] {
  return q.kinds.map((k) => [
    k.kind,
    k.same ? "paraphrase hits" : "false hits",
    String(k.pairs),
    pct(k.thresholdOnly.rate),
    pct(k.withGuard.rate),
    k.meanSimilarity.toFixed(3),
  ]);
}

const HEAD = ["kind", "rate of", "pairs", "threshold only", "threshold + guard", "mean similarity"];

const table = (rows: string[][]): string[] => {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  "),
  );
};

const HTTP_HEAD = ["kind", "rate of", "pairs", "HTTP path (guard on)", "module path (guard on)", "tiers served"];

/** Per kind: the HTTP path's rate beside the module path's (when both ran). */
function httpLines(q: CacheQualityReport, http: HttpPathReport): string[][] {
  return http.kinds.map((k) => {
    const module = q.kinds.find((m) => m.kind === k.kind);
    return [
      k.kind,
      k.same ? "paraphrase hits" : "false hits",
      String(k.pairs),
      pct(k.rate),
      module ? pct(module.withGuard.rate) : "-",
      Object.entries(k.tiers)
        .map(([tier, n]) => `${tier} ${n}`)
        .join(", "),
    ];
  });
}

/** One line: do the two paths serve the same pairs? */
export function agreementLine(http: HttpPathReport): string {
  const a = http.agreement;
  if (!a) return "";
  if (a.agree === a.pairs) return `the HTTP and module paths agree on all ${a.pairs} pairs`;
  const near = a.disagreements.map((d) => d.similarity.toFixed(3)).join(", ");
  return `the HTTP and module paths agree on ${a.agree}/${a.pairs} pairs (${pct(a.rate)}); they differ on ${a.pairs - a.agree} (module-path similarity ${near})`;
}

function httpText(q: CacheQualityReport, http: HttpPathReport): string[] {
  return [
    `HTTP path (${http.target}): ${http.pairs} pairs in ${http.durationS} s${http.errors > 0 ? `, ${http.errors} failed (${http.firstError ?? ""})` : ""}; ` +
      `false hits ${pct(http.falseHitRate)}, paraphrase hits ${pct(http.paraphraseHitRate)}`,
    ...table([HTTP_HEAD, ...httpLines(q, http)]),
    ...(http.agreement ? [agreementLine(http)] : []),
  ];
}

export function renderCacheQualityText(q: CacheQualityReport): string {
  const out = [
    `${q.embeddingModel} (${q.embeddingDim} dims), threshold ${q.threshold}, ${q.pairs} pairs; ${q.safeguards}`,
  ];
  if (q.falseHitRate && q.paraphraseHitRate)
    out.push(
      `false hits: ${pct(q.falseHitRate.thresholdOnly)} threshold only, ${pct(q.falseHitRate.withGuard)} with the guard; ` +
        `paraphrase hits: ${pct(q.paraphraseHitRate.thresholdOnly)} / ${pct(q.paraphraseHitRate.withGuard)}`,
      ...table([HEAD, ...kindLines(q)]),
    );
  if (q.http) out.push(...httpText(q, q.http));
  if (q.calibration) {
    out.push("calibrated thresholds (false hits ≤ 0.5 %, guard on):");
    for (const c of q.calibration)
      out.push(
        `  ${c.taskType}: ${c.threshold === undefined ? (c.samePairs === 0 || c.differentPairs === 0 ? "not measurable (pairs of one label only)" : "none up to 1.00") : c.threshold.toFixed(2)} ` +
          `(paraphrase hits ${pct(c.paraphraseHitRate)} of ${c.samePairs}, false hits ${pct(c.falseHitRate)} of ${c.differentPairs})`,
      );
    out.push(q.calibrationEnv ?? "");
  }
  return out.join("\n");
}

export function renderCacheQualityHtml(q: CacheQualityReport): string {
  const series = (["threshold", "threshold+guard"] as const).flatMap((s) => {
    const points = q.sweep.filter((p) => p.safeguards === s);
    return [
      { name: `paraphrase hits (recall), ${s}`, points: points.map((p) => [p.threshold, p.recall] as const) },
      { name: `precision, ${s}`, points: points.map((p) => [p.threshold, p.precision] as const) },
      { name: `false-hit rate, ${s}`, points: points.map((p) => [p.threshold, p.falseHitRate] as const) },
    ];
  });
  const chart = lineChart({
    id: "sweep-chart",
    title: `Precision / recall over the threshold (${q.embeddingModel})`,
    xLabel: "similarity threshold",
    yLabel: "share of pairs",
    series,
  });
  const rows = kindLines(q)
    .map(
      ([first, ...rest]) =>
        `<tr><td>${escapeXml(first ?? "")}</td>${rest.map((c) => `<td>${escapeXml(c)}</td>`).join("")}</tr>`,
    )
    .join("\n");
  const moduleSection =
    q.kinds.length === 0
      ? ""
      : `<table><thead><tr>${HEAD.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table>
${chart}`;
  const http = q.http
    ? `<h2>Through the app (HTTP path)</h2>
<p>${escapeXml(`${q.http.target}: ${q.http.pairs} pairs, ${q.http.errors} failed; false hits ${pct(q.http.falseHitRate)}, paraphrase hits ${pct(q.http.paraphraseHitRate)}. ${agreementLine(q.http)}`)}</p>
<table><thead><tr>${HTTP_HEAD.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${httpLines(q, q.http)
        .map(
          ([first, ...rest]) =>
            `<tr><td>${escapeXml(first ?? "")}</td>${rest.map((c) => `<td>${escapeXml(c)}</td>`).join("")}</tr>`,
        )
        .join("\n")}</tbody></table>`
    : "";
  const calibration = q.calibration
    ? `<h2>Calibrated thresholds</h2><p>Lowest threshold per task type with false hits ≤ 0.5 % (guard on): <code>${escapeXml(q.calibrationEnv ?? "")}</code></p>`
    : "";
  return `<h2>Semantic cache quality</h2>
<p>${escapeXml(`${q.embeddingModel} (${q.embeddingDim} dims), threshold ${q.threshold}, ${q.pairs} pairs. ${q.safeguards}`)}</p>
${moduleSection}
${http}
${calibration}`;
}
