// The operator console's page code: plain browser JavaScript, loaded as a module, no build step.
// Live from two Server-Sent Events streams, with no polling loop: GET /metrics/stream (the /metrics snapshot every
// second) and GET /events?task_type=sentiment_analysis (the tenant's sentiment results). With API keys on, the page
// trades the key typed in its form for a stream token (GET /auth/stream-token) and puts that in ?access_token=; the
// key stays in this page's memory only.
import { countLabel, LABELS, labelOf, polylinePoints, ratesOf } from "/dashboard/logic.js";

/** Five minutes of snapshots at one a second: the chart's span and the rates' window. */
const KEEP_SAMPLES = 300;
const LATEST = 20;

const $ = (selector) => document.querySelector(selector);
const metric = (name) => document.querySelector(`[data-metric="${name}"]`);
const setMetric = (name, text) => {
  const node = metric(name);
  if (node && node.textContent !== text) node.textContent = text;
};

const integer = (n) => String(Math.round(n));
const decimal = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const percent = (n) => `${(n * 100).toFixed(1)} %`;

const state = {
  key: undefined,
  samples: [],
  prices: undefined,
  sentiment: { positive: 0, neutral: 0, negative: 0, unlabelled: 0, minutes: [] },
  sources: [],
};

function connection(text, kind) {
  const node = $("#connection");
  node.textContent = text;
  node.dataset.state = kind;
}

async function streamToken() {
  const headers = state.key ? { authorization: `Bearer ${state.key}` } : {};
  const response = await fetch("/auth/stream-token", { headers, cache: "no-store" });
  if (response.status === 401) return { status: 401 };
  if (!response.ok) throw new Error(`GET /auth/stream-token answered ${response.status}`);
  return { status: 200, token: (await response.json()).token };
}

/** Opens an EventSource with a fresh token; a stream refused or expired gets a new token and is opened again. */
function open(path, handlers) {
  let source;
  let closed = false;
  const connect = async () => {
    const { token } = await streamToken();
    if (closed) return;
    const separator = path.includes("?") ? "&" : "?";
    source = new EventSource(`${path}${separator}access_token=${encodeURIComponent(token ?? "")}`);
    for (const [name, handler] of Object.entries(handlers.events)) source.addEventListener(name, handler);
    source.onopen = () => {
      connection("live", "live");
      handlers.open?.();
    };
    source.onerror = async () => {
      // A CLOSED source was refused (401 once the token expired, 403, …): EventSource never retries those.
      if (source.readyState !== EventSource.CLOSED || closed) return;
      // EventSource does not say why: one request reads the status, and is cut as soon as the headers are in.
      const abort = new AbortController();
      const probe = await fetch(`${path}${separator}access_token=${encodeURIComponent(token ?? "")}`, {
        signal: abort.signal,
      }).catch(() => undefined);
      abort.abort();
      if (probe?.status === 403) return handlers.forbidden?.();
      setTimeout(connect, 2000);
    };
  };
  void connect().catch((error) => connection(String(error.message ?? error), "error"));
  return {
    close() {
      closed = true;
      source?.close();
    },
  };
}

function onMetrics(event) {
  const snapshot = JSON.parse(event.data);
  state.samples.push({ at: Date.now(), ...snapshot });
  if (state.samples.length > KEEP_SAMPLES) state.samples.shift();
  setMetric("accepted", integer(snapshot.total_tasks));
  setMetric("completed", integer(snapshot.completed_tasks));
  setMetric("failed", integer(snapshot.failed_tasks));
  setMetric("retried", integer(snapshot.retried_tasks));
  setMetric("latency-p50", integer(snapshot.latency_ms.p50));
  setMetric("latency-p95", integer(snapshot.latency_ms.p95));
  setMetric("latency-p99", integer(snapshot.latency_ms.p99));
  const rates = ratesOf(state.samples, state.prices);
  if (rates) {
    setMetric("accepted-per-s", decimal(rates.accepted_per_s));
    setMetric("completed-per-s", decimal(rates.completed_per_s));
    setMetric("failed-per-s", decimal(rates.failed_per_s));
    setMetric("failure-rate", percent(rates.failure_rate));
    setMetric("retry-rate", percent(rates.retry_rate));
    setMetric("llm-calls-per-min", decimal(rates.llm_calls_per_min));
    setMetric("tokens-per-min", integer(rates.tokens_per_min));
    setMetric("cost-per-min", rates.cost_usd_per_min === undefined ? "n/a" : `$${rates.cost_usd_per_min.toFixed(4)}`);
  }
  drawLatency();
}

function drawLatency() {
  const svg = $("#latency-chart");
  const series = ["p50", "p95", "p99"].map((q) => state.samples.map((s) => s.latency_ms[q]));
  const max = Math.max(1, ...series[2]);
  // The x axis is the window's full span, so a young page draws from the left and grows to the right.
  const width = 600 * Math.min(1, state.samples.length / KEEP_SAMPLES);
  svg.querySelectorAll("polyline").forEach((line, i) => {
    line.setAttribute("points", polylinePoints(series[i], width, 160, max * 1.1));
  });
  $("#latency-max").textContent = `${integer(max * 1.1)} ms`;
}

function onCompletion(event) {
  const data = JSON.parse(event.data);
  if (data.task_type !== "sentiment_analysis") return;
  const label = data.status === "SUCCESS" ? labelOf(data.result) : undefined;
  const s = state.sentiment;
  if (label) {
    s[label]++;
    countLabel(s.minutes, label, data.finished_at ?? Date.now());
  } else {
    s.unlabelled++;
  }
  for (const name of [...LABELS, "unlabelled"]) setMetric(`sentiment-${name}`, integer(s[name]));
  renderMinutes();
  const item = document.createElement("li");
  item.dataset.taskId = data.task_id;
  item.dataset.label = label ?? "unlabelled";
  const tag = document.createElement("b");
  tag.className = `label-${label ?? "neutral"}`;
  tag.textContent = label ?? data.status.toLowerCase();
  const id = document.createElement("code");
  id.textContent = ` ${data.task_id} `;
  const text = document.createElement("span");
  text.textContent = typeof data.result?.response === "string" ? data.result.response : "";
  item.append(tag, id, text);
  const list = $("#sentiment-latest");
  list.prepend(item);
  while (list.children.length > LATEST) list.lastElementChild.remove();
}

function renderMinutes() {
  const body = $("#sentiment-minutes tbody");
  const rows = [...state.sentiment.minutes].reverse().map((bucket) => {
    const row = document.createElement("tr");
    const time = new Date(bucket.minute).toTimeString().slice(0, 5);
    const total = bucket.positive + bucket.neutral + bucket.negative;
    for (const text of [time, bucket.positive, bucket.neutral, bucket.negative]) {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      row.append(cell);
    }
    const bar = document.createElement("span");
    bar.className = "bar";
    for (const label of LABELS) {
      const part = document.createElement("i");
      part.className = `label-${label}`;
      part.style.width = `${total ? (bucket[label] / total) * 100 : 0}%`;
      part.style.background = "currentColor";
      bar.append(part);
    }
    const cell = document.createElement("td");
    cell.append(bar);
    row.append(cell);
    return row;
  });
  body.replaceChildren(...rows);
}

function start() {
  for (const source of state.sources) source.close();
  $("#login").hidden = true;
  $("#console").hidden = false;
  connection("connecting…", "idle");
  state.sources = [
    open("/metrics/stream", {
      events: {
        config: (event) => {
          const config = JSON.parse(event.data);
          state.prices = config.prices_usd_per_mtok;
        },
        metrics: onMetrics,
      },
      forbidden: () => {
        const note = $("#overview-note");
        note.hidden = false;
        note.textContent = "The overview spans every tenant: it needs a key named in API_ADMINS.";
      },
    }),
    open("/events?task_type=sentiment_analysis", {
      events: { message: onCompletion },
      // For tests and for the eye: results count from the moment this is set.
      open: () => {
        $("#sentiment").dataset.live = "true";
      },
    }),
  ];
}

async function main() {
  const { status } = await streamToken();
  if (status === 200) return start();
  // API keys are on: the page shows nothing until it has one.
  const form = $("#login");
  form.hidden = false;
  connection("API key needed", "idle");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    state.key = new FormData(form).get("key");
    const answer = await streamToken().catch(() => ({ status: 0 }));
    if (answer.status !== 200) {
      state.key = undefined;
      $("#login-error").textContent = "That key was refused.";
      return;
    }
    form.reset();
    start();
  });
}

void main();
