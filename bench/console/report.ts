/** The `console` section of a result: the terminal lines and the HTML (a table per sample, three charts). */
import { escapeXml, lineChart } from "../report/svg-chart";
import type { ConsoleReport, SeriesSummary } from "./analysis";

const signed = (n: number, digits: number) => `${n >= 0 ? "+" : ""}${n.toFixed(digits)}`;
const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
const series = (s: SeriesSummary, unit: string, digits = 1) =>
  `${s.first.toFixed(digits)} → ${s.last.toFixed(digits)} ${unit} (min ${s.min.toFixed(digits)}, max ${s.max.toFixed(digits)}, slope ${signed(s.slopePerMin, digits + 1)} ${unit}/min, over the second half ${signed(s.lastHalfSlopePerMin, digits + 1)})`;

/** One line a reader can quote: the three targets (busy < 20 %, heap and DOM flat) and the lag. */
export function consoleHeadline(c: ConsoleReport): string {
  return (
    `console: main thread busy ${pct(c.busy.overall)} overall, worst ${c.sampleEveryS} s ${pct(c.busy.maxInterval)} ` +
    `(target < ${pct(c.busy.target)}); main thread CPU ${c.mainThreadCpu.overall < 0 ? "n/a" : pct(c.mainThreadCpu.overall)}; JS heap ${c.heapMiB.first.toFixed(1)} → ${c.heapMiB.last.toFixed(1)} MiB ` +
    `(${signed(c.heapMiB.slopePerMin, 3)} MiB/min, second half ${signed(c.heapMiB.lastHalfSlopePerMin, 3)}); DOM nodes ${c.nodes.first} → ${c.nodes.last} ` +
    `(${c.nodes.slopePerMin >= 0 ? "+" : ""}${c.nodes.slopePerMin.toFixed(1)}/min); completion → page P50 ${c.completionToPageMs.p50} ms, ` +
    `P95 ${c.completionToPageMs.p95} ms`
  );
}

export function renderConsoleText(c: ConsoleReport): string {
  const lines = [
    consoleHeadline(c),
    `  load: ${Math.round(c.eventsPerMin).toLocaleString("en-US")} events/min (${c.mix}); a sample every ${c.sampleEveryS} s, ${c.samples.length} samples`,
    `  JS heap after a forced GC: ${series(c.heapMiB, "MiB", 2)}`,
    `  DOM nodes alive after it:  ${series(c.nodes, "nodes", 0)}`,
    `  nodes in the document:     ${series(c.documentNodes, "nodes", 0)}`,
    `  long tasks (> 50 ms): ${c.longTasks.count}, ${Math.round(c.longTasks.totalMs)} ms in all, longest ${Math.round(c.longTasks.maxMs)} ms`,
    `  completion → page (Live sentiment counts, every sentiment_analysis completion): ${c.completionToPageMs.seen}/${c.completionToPageMs.completions} counted, P50 ${c.completionToPageMs.p50} ms, P95 ${c.completionToPageMs.p95} ms, max ${c.completionToPageMs.max} ms`,
    `  at the end: the page shows ${c.final.pageCompleted} completed and ${c.final.pageFailed} failed; /metrics ${c.final.metricsCompleted} and ${c.final.metricsFailed}`,
  ];
  return lines.join("\n");
}

export function renderConsoleHtml(c: ConsoleReport): string {
  const busy = lineChart({
    id: "console-busy-chart",
    title: `Browser main thread busy, % of each ${c.sampleEveryS} s`,
    xLabel: "second of the measured phase",
    yLabel: "% busy",
    series: [
      { name: "all tasks", points: c.samples.map((s) => [s.at, s.busy * 100] as const) },
      { name: "script", points: c.samples.map((s) => [s.at, s.script * 100] as const) },
      { name: "style + layout", points: c.samples.map((s) => [s.at, (s.style + s.layout) * 100] as const) },
      {
        name: "main thread CPU (/proc)",
        points: c.samples.filter((s) => s.mainThreadCpu >= 0).map((s) => [s.at, s.mainThreadCpu * 100] as const),
      },
      {
        name: "target",
        points: [
          [c.samples[0]?.at ?? 0, c.busy.target * 100],
          [c.samples.at(-1)?.at ?? 1, c.busy.target * 100],
        ],
      },
    ],
  });
  const heap = lineChart({
    id: "console-heap-chart",
    title: "JS heap used after a forced GC",
    xLabel: "second of the measured phase",
    yLabel: "MiB",
    series: [{ name: "JSHeapUsedSize", points: c.samples.map((s) => [s.at, s.heapMiB] as const) }],
  });
  const nodes = lineChart({
    id: "console-nodes-chart",
    title: "DOM nodes",
    xLabel: "second of the measured phase",
    yLabel: "nodes",
    series: [
      { name: "alive after GC (Nodes)", points: c.samples.map((s) => [s.at, s.nodes] as const) },
      { name: "in the document", points: c.samples.map((s) => [s.at, s.documentNodes] as const) },
    ],
  });
  const rows = c.samples
    .map(
      (s) =>
        `<tr><td>${s.at.toFixed(0)}</td><td>${pct(s.busy)}</td><td>${pct(s.script)}</td><td>${pct(s.style + s.layout)}</td><td>${s.mainThreadCpu < 0 ? "n/a" : pct(s.mainThreadCpu)}</td><td>${s.heapMiB.toFixed(2)}</td><td>${s.nodes}</td><td>${s.documentNodes}</td><td>${s.longTasks}</td></tr>`,
    )
    .join("\n");
  return `<h2>Operator console</h2>
<p><b>${escapeXml(consoleHeadline(c))}</b></p>
<pre style="white-space:pre-wrap">${escapeXml(renderConsoleText(c))}</pre>
${busy}
${heap}
${nodes}
<table><thead><tr><th>second</th><th>busy</th><th>script</th><th>style + layout</th><th>main thread CPU</th><th>heap MiB</th><th>nodes</th><th>in document</th><th>long tasks</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}
