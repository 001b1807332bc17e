/**
 * The self-contained HTML report of a run: the latency distribution
 * (percentile spectrum from the HDR histograms, log scale, as HdrHistogram's
 * plotter draws it), throughput and P99 per second, and the summary table.
 * Inline SVG and CSS only: it opens offline, from a file.
 */
import { addEncoded, createDurationHistogram } from "../../src/metrics/histogram";
import { renderCacheQualityHtml } from "../cache-quality/report";
import { renderConsoleHtml } from "../console/report";
import type { PartResult, RunResult } from "../result";
import { escapeXml, lineChart, type Series } from "./svg-chart";
import { errorKinds, fmt, PART_COLUMNS, partCells } from "./table";

/** x = log10(1 / (1 - p)): 0 at P0, 1 at P90, 2 at P99, 3 at P99.9... */
const SPECTRUM_STEPS = 12;
const SPECTRUM_MAX_X = 5;

function spectrum(part: PartResult): Series | undefined {
  if (!part.histogram) return undefined;
  const histogram = createDurationHistogram();
  if (!addEncoded(histogram, part.histogram) || histogram.totalCount === 0) return undefined;
  const points: [number, number][] = [];
  // Past 1/count the percentiles only repeat the maximum.
  const lastX = Math.min(SPECTRUM_MAX_X, Math.log10(histogram.totalCount));
  for (let k = 0; k <= SPECTRUM_STEPS * SPECTRUM_MAX_X; k++) {
    const x = k / SPECTRUM_STEPS;
    if (x > lastX) break;
    const percentile = 100 * (1 - 10 ** -x);
    points.push([x, histogram.getValueAtPercentile(percentile) / 1000]);
  }
  points.push([lastX, histogram.maxValue / 1000]);
  return { name: part.name, points };
}

const PERCENTILE_TICKS = ["0", "90", "99", "99.9", "99.99", "99.999"].map((label, at) => ({ at, label: `${label}%` }));

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.chart text{font-size:11px;fill:#333}.chart .title{font-size:14px;font-weight:600}
.chart .grid{stroke:#eee}.chart .frame{fill:none;stroke:#999}.meta{color:#555}code{background:#f4f4f4;padding:1px 4px}`;

function partRow(part: PartResult): string {
  const cells = partCells(part, errorKinds(part) || "0");
  const [first, ...rest] = cells.map((c) => escapeXml(String(c)));
  return `<tr><td>${first}</td>${rest.map((c) => `<td>${c}</td>`).join("")}</tr>`;
}

export function renderHtml(result: RunResult): string {
  const withLatency = result.parts.filter((p) => p.histogram);
  const spectra = withLatency.map(spectrum).filter((s): s is Series => s !== undefined);
  const timed = result.parts.filter((p) => p.timeline.length > 0);
  const throughput = lineChart({
    id: "throughput-chart",
    title: "Throughput over time",
    xLabel: "second of the measured phase",
    yLabel: "completed per second",
    series: timed.map((p) => ({ name: p.name, points: p.timeline.map((t) => [t.second, t.completed] as const) })),
  });
  const p99 = lineChart({
    id: "p99-chart",
    title: "P99 latency per second",
    xLabel: "second of the measured phase",
    yLabel: "ms (log)",
    logY: true,
    series: timed.map((p) => ({
      name: p.name,
      points: p.timeline.filter((t) => t.completed + t.errors > 0).map((t) => [t.second, t.p99] as const),
    })),
  });
  const latency = lineChart({
    id: "latency-chart",
    title: "Latency distribution (percentile spectrum)",
    xLabel: "percentile",
    yLabel: "ms (log)",
    logY: true,
    series: spectra,
    xTicks: PERCENTILE_TICKS,
  });
  const m = result.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bun bench ${escapeXml(result.scenario)} — ${escapeXml(result.startedAt)}</title><style>${CSS}</style></head>
<body>
<h1>bun bench ${escapeXml(result.scenario)}${result.interrupted ? " (interrupted: partial results)" : ""}</h1>
<p class="meta">${escapeXml(result.target)}<br>${escapeXml(result.startedAt)} · <code>${escapeXml(result.command)}</code><br>
${escapeXml(`${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Bun ${m.bun}, load average at start ${m.loadAvg.join(" ")}`)}</p>
<table><thead><tr>${PART_COLUMNS.map((c) => `<th>${c}</th>`).join("")}</tr></thead>
<tbody>${result.parts.map(partRow).join("\n")}</tbody></table>
${result.parts
  .filter((p) => p.extra)
  .map(
    (p) =>
      `<p>${escapeXml(p.name)}: ${escapeXml(
        Object.entries(p.extra ?? {})
          .map(([k, v]) => `${k} ${v}`)
          .join(", "),
      )}</p>`,
  )
  .join("\n")}
${result.step ? `<p>Highest rate held with P99 ≤ ${result.step.p99TargetMs} ms: <b>${result.step.highestHeld === undefined ? "none" : `${fmt(result.step.highestHeld, 0)}/s`}</b></p>` : ""}
${result.cacheQuality ? renderCacheQualityHtml(result.cacheQuality) : ""}
${result.console ? renderConsoleHtml(result.console) : ""}
${latency}
${throughput}
${p99}
<p class="meta">Open-loop latencies run from each request's intended send time (coordinated omission corrected, as wrk2); closed-loop ones from the real send.</p>
</body></html>
`;
}
