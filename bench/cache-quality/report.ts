/**
 * The `cache-quality` section of a result: its JSON shape, the terminal
 * lines and the HTML (per-kind table, precision/recall sweep drawn with the
 * shared SVG chart, the calibration).
 */
import { escapeXml, lineChart } from "../report/svg-chart";
import type { Calibration, KindRow, SweepPoint } from "./analysis";

export interface CacheQualityReport {
  embeddingModel: string;
  embeddingDim: number;
  threshold: number;
  pairs: number;
  /** No LLM verification of a semantic hit exists yet: only the threshold and the lexical guard are measured. */
  safeguards: string;
  falseHitRate: { thresholdOnly: number; withGuard: number };
  paraphraseHitRate: { thresholdOnly: number; withGuard: number };
  kinds: KindRow[];
  sweep: SweepPoint[];
  calibration?: Calibration[];
  calibrationEnv?: string;
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

export function renderCacheQualityText(q: CacheQualityReport): string {
  const rows = [HEAD, ...kindLines(q)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const out = [
    `${q.embeddingModel} (${q.embeddingDim} dims), threshold ${q.threshold}, ${q.pairs} pairs; ${q.safeguards}`,
    `false hits: ${pct(q.falseHitRate.thresholdOnly)} threshold only, ${pct(q.falseHitRate.withGuard)} with the guard; ` +
      `paraphrase hits: ${pct(q.paraphraseHitRate.thresholdOnly)} / ${pct(q.paraphraseHitRate.withGuard)}`,
    ...rows.map((r) =>
      r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  "),
    ),
  ];
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
  const calibration = q.calibration
    ? `<h2>Calibrated thresholds</h2><p>Lowest threshold per task type with false hits ≤ 0.5 % (guard on): <code>${escapeXml(q.calibrationEnv ?? "")}</code></p>`
    : "";
  return `<h2>Semantic cache quality</h2>
<p>${escapeXml(`${q.embeddingModel} (${q.embeddingDim} dims), threshold ${q.threshold}, ${q.pairs} pairs. ${q.safeguards}`)}</p>
<table><thead><tr>${HEAD.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table>
${chart}
${calibration}`;
}
