/**
 * A line chart as inline SVG, written here so the HTML report needs no
 * script or CDN (the report must open offline): axes, ticks, one polyline
 * per series, a legend. Linear or log10 axes.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logY?: boolean;
  /** Tick labels for x, when the axis is not plain numbers (e.g. percentiles). */
  xTicks?: readonly { at: number; label: string }[];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const W = 760;
const H = 340;
const M = { left: 70, right: 20, top: 36, bottom: 48 };

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function niceTicks(min: number, max: number, count = 5): number[] {
  if (max <= min) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const label = (n: number) =>
  Math.abs(n) >= 1000 ? n.toLocaleString("en-US", { maximumFractionDigits: 0 }) : String(Number(n.toPrecision(3)));

export function lineChart(spec: ChartSpec): string {
  const all = spec.series.flatMap((s) => s.points);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const body: string[] = [];
  if (all.length === 0) {
    body.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="empty">no data</text>`);
  } else {
    const xs = all.map(([x]) => x);
    const ys = all.map(([, y]) => (spec.logY ? Math.max(y, 0.001) : y));
    const xMin = Math.min(...xs);
    const xMax = Math.max(...xs, xMin + 1);
    const ty = (y: number) => (spec.logY ? Math.log10(Math.max(y, 0.001)) : y);
    const yLow = spec.logY ? Math.floor(ty(Math.min(...ys))) : 0;
    const yHigh = spec.logY ? Math.ceil(ty(Math.max(...ys)) + 1e-9) : Math.max(...ys) * 1.1 || 1;
    const px = (x: number) => M.left + ((x - xMin) / (xMax - xMin)) * plotW;
    const py = (y: number) => M.top + plotH - ((ty(y) - yLow) / (yHigh - yLow || 1)) * plotH;
    const yTicks = spec.logY
      ? Array.from({ length: yHigh - yLow + 1 }, (_, i) => 10 ** (yLow + i))
      : niceTicks(0, yHigh);
    for (const t of yTicks) {
      const y = py(t).toFixed(1);
      body.push(
        `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" class="grid"/><text x="${M.left - 6}" y="${y}" dy="4" text-anchor="end">${label(t)}</text>`,
      );
    }
    const xTicks = (spec.xTicks ?? niceTicks(xMin, xMax, 8).map((at) => ({ at, label: label(at) }))).filter(
      (t) => t.at >= xMin && t.at <= xMax,
    );
    for (const t of xTicks) {
      const x = px(t.at).toFixed(1);
      body.push(
        `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + plotH}" class="grid"/><text x="${x}" y="${M.top + plotH + 16}" text-anchor="middle">${escapeXml(t.label)}</text>`,
      );
    }
    spec.series.forEach((series, i) => {
      const color = COLORS[i % COLORS.length];
      const points = series.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
      body.push(
        `<polyline class="series" data-series="${escapeXml(series.name)}" fill="none" stroke="${color}" stroke-width="2" points="${points}"/>`,
      );
      body.push(
        `<rect x="${M.left + 8}" y="${M.top + 6 + i * 16}" width="10" height="10" fill="${color}"/><text x="${M.left + 22}" y="${M.top + 15 + i * 16}">${escapeXml(series.name)}</text>`,
      );
    });
  }
  return [
    `<svg id="${spec.id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}">`,
    `<text x="${W / 2}" y="20" text-anchor="middle" class="title">${escapeXml(spec.title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" class="frame"/>`,
    ...body,
    `<text x="${M.left + plotW / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
    "</svg>",
  ].join("\n");
}
