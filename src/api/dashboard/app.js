// The operator console's page code: plain browser JavaScript, loaded as a module, no build step.
// Live from Server-Sent Events streams, with no polling loop: GET /metrics/stream (the /metrics snapshot every
// second: overview, queues, workers, cache, Kafka), GET /events?task_type=sentiment_analysis (the tenant's sentiment
// results) and GET /events?tenant=* (every completion an admin may see, or the tenant's own: the Tasks list). With
// API keys on, the page trades the key typed in its form for a stream token (GET /auth/stream-token) and puts that
// in ?access_token=; the key stays in this page's memory only, and goes as a Bearer header on GET /tasks.
import {
  CACHE_TIERS,
  countLabel,
  formatDuration,
  formatUsd,
  hitRatesByTier,
  LABELS,
  labelOf,
  matchesTaskFilter,
  partitionRows,
  polylinePoints,
  QUEUE_STATES,
  queueAcceptedPerSecond,
  queueSeries,
  ratesOf,
  tasksQuery,
  taskTimings,
  truncate,
  upsertTask,
  workerAges,
} from "/dashboard/logic.js";

/** Five minutes of snapshots at one a second: the chart's span and the rates' window. */
const KEEP_SAMPLES = 300;
const LATEST = 20;
/** Rows of the Tasks list: one page of GET /tasks, then kept at that size as completions arrive. */
const TASK_ROWS = 50;
/** Characters of a result shown in the detail. */
const RESULT_CHARS = 2000;
/**
 * The lists fed by completions (Tasks, Live sentiment) are drawn at most once a second, however many arrive: drawn
 * at each completion, they kept the browser's main thread busy 80 % of the time at 10,000 events a minute, and
 * drawn four times a second, they cost about 40 % more of its CPU than once (BENCHMARKS.md, "Operator console").
 * A first completion after a quiet spell is drawn at once.
 */
const LIST_REDRAW_MS = 1000;

const $ = (selector) => document.querySelector(selector);
const metric = (name) => document.querySelector(`[data-metric="${name}"]`);
const setMetric = (name, text) => {
  const node = metric(name);
  if (node && node.textContent !== text) node.textContent = text;
};

const integer = (n) => String(Math.round(n));
/** Sets each named metric to its count. */
const setCounts = (counts) => {
  for (const [name, n] of Object.entries(counts)) setMetric(name, integer(n));
};
const decimal = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const percent = (n) => `${(n * 100).toFixed(1)} %`;

/** Draws due at the next frame of the lists' cadence. */
const dueDraws = new Set();
let drawnAt = Number.NEGATIVE_INFINITY;
let drawPending = false;

/**
 * `draw`, to run in the next animation frame of a cadence of one every LIST_REDRAW_MS at most; every draw that is
 * due then runs in that same frame (one layout and paint for all of them), each once however often it was asked for.
 */
function scheduleDraw(draw) {
  dueDraws.add(draw);
  if (drawPending) return;
  drawPending = true;
  setTimeout(
    () =>
      requestAnimationFrame(() => {
        drawPending = false;
        drawnAt = performance.now();
        const draws = [...dueDraws];
        dueDraws.clear();
        for (const due of draws) due();
      }),
    Math.max(0, drawnAt + LIST_REDRAW_MS - performance.now()),
  );
}
const throttled = (draw) => () => scheduleDraw(draw);

const state = {
  key: undefined,
  samples: [],
  prices: undefined,
  /** The workers' heartbeat interval (event: config); a worker is stale after two without a beat. */
  heartbeatMs: 2000,
  /** `latest`: completions not drawn yet, newest last (at most LATEST). */
  sentiment: { positive: 0, neutral: 0, negative: 0, unlabelled: 0, minutes: [], latest: [] },
  sources: [],
  /** What operators changed (GET /admin/control's answer), from the workers event. */
  control: undefined,
  tasks: {
    rows: [],
    filter: { status: "", task_type: "", queue: "", tenant: "" },
    detailId: undefined,
  },
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
  renderQueues(snapshot.queues ?? {});
  renderCache(snapshot.cache);
  renderSpend(snapshot.llm_costs, snapshot.llm_routing);
  renderKafka(snapshot.kafka);
}

/** The LLM spend table: one row per provider, model, task type and tenant, most expensive first. */
function renderSpend(costs, routing) {
  if (!costs) return;
  setMetric("llm-total-usd", formatUsd(costs.total_usd));
  setMetric("llm-fallbacks", integer(routing?.fallbacks ?? 0));
  const rows = [...costs.by].sort((a, b) => b.cost_usd - a.cost_usd || b.calls - a.calls);
  const keyOf = (r) => [r.provider, r.model, r.task_type, r.tenant].join("|");
  const body = $("#llm-costs tbody");
  const wanted = rows.map(keyOf).join("\n");
  if (body.dataset.keys !== wanted) {
    body.dataset.keys = wanted;
    body.replaceChildren(
      ...rows.map((r) => {
        const key = keyOf(r);
        return tr(
          cell(r.provider),
          cell(r.model),
          cell(r.task_type),
          cell(r.tenant || "–"),
          cell("–", { metric: `llm-calls:${key}` }),
          cell("–", { metric: `llm-errors:${key}` }),
          cell("–", { metric: `llm-fallback-answers:${key}` }),
          cell("–", { metric: `llm-tokens:${key}` }),
          cell("–", { metric: `llm-cost:${key}` }),
        );
      }),
    );
  }
  for (const r of rows) {
    const key = keyOf(r);
    setMetric(`llm-calls:${key}`, integer(r.calls));
    setMetric(`llm-errors:${key}`, integer(r.errors));
    setMetric(`llm-fallback-answers:${key}`, integer(r.fallback_answers));
    setMetric(`llm-tokens:${key}`, integer(r.prompt_tokens + r.completion_tokens));
    setMetric(`llm-cost:${key}`, formatUsd(r.cost_usd));
  }
}

/**
 * Draws one polyline per series in `svg` (its viewBox is width × height), all on one scale whose top is the
 * highest value plus 10 %; returns that top. The x axis is the window's full span, so a young page draws from the
 * left and grows to the right. The latency chart and every queue's sparkline use it.
 */
function drawLines(svg, series, width, height) {
  const top = Math.max(1, ...series.flat()) * 1.1;
  const span = width * Math.min(1, state.samples.length / KEEP_SAMPLES);
  svg.querySelectorAll("polyline").forEach((line, i) => {
    line.setAttribute("points", polylinePoints(series[i] ?? [], span, height, top));
  });
  return top;
}

function drawLatency() {
  const series = ["p50", "p95", "p99"].map((q) => state.samples.map((s) => s.latency_ms[q]));
  const top = drawLines($("#latency-chart"), series, 600, 160);
  $("#latency-max").textContent = `${integer(top)} ms`;
}

const SVG = "http://www.w3.org/2000/svg";

/** The row of one queue, made once: its depth cells and its sparkline, with one polyline per state. */
function queueRow(name) {
  const body = $("#queue-table tbody");
  const existing = [...body.children].find((row) => row.dataset.queue === name);
  if (existing) return existing;
  const row = document.createElement("tr");
  row.dataset.queue = name;
  const title = document.createElement("td");
  title.textContent = name;
  row.append(title);
  for (const key of [...QUEUE_STATES, "accepted-per-s"]) {
    const cell = document.createElement("td");
    cell.dataset.metric = `queue:${name}:${key}`;
    cell.textContent = "–";
    row.append(cell);
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 200 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${name} depth over time`);
  for (const queueState of QUEUE_STATES) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", queueState);
    svg.append(line);
  }
  const chart = document.createElement("td");
  chart.append(svg);
  row.append(chart);
  const controls = document.createElement("td");
  controls.className = "actions admin-only";
  controls.append(
    button("Pause", { action: "queue-toggle", queue: name }),
    button("Retry failed", { action: "queue-retry-failed", queue: name }),
    button("Purge failed", { action: "queue-purge-failed", queue: name }),
  );
  row.append(controls);
  body.append(row);
  return row;
}

function renderQueues(queues) {
  const names = Object.keys(queues).sort();
  $("#queues-empty").hidden = names.length > 0;
  for (const name of names) {
    const row = queueRow(name);
    for (const queueState of QUEUE_STATES) setMetric(`queue:${name}:${queueState}`, integer(queues[name][queueState]));
    const accepted = queueAcceptedPerSecond(state.samples, name);
    setMetric(`queue:${name}:accepted-per-s`, accepted === undefined ? "–" : decimal(accepted));
    const series = queueSeries(state.samples, name);
    drawLines(
      row.querySelector("svg"),
      QUEUE_STATES.map((queueState) => series[queueState]),
      200,
      30,
    );
  }
  // A queue no longer reported (the deployment's queues changed) leaves the table.
  for (const row of [...$("#queue-table tbody").children]) if (!(row.dataset.queue in queues)) row.remove();
  if (state.control) renderControl(state.control);
}

function onWorkers(event) {
  const { at, workers, control } = JSON.parse(event.data);
  if (control) renderControl(control);
  const now = Date.parse(at);
  let stale = 0;
  const rows = workers.map((worker) => {
    const ages = workerAges(worker, now, state.heartbeatMs);
    if (ages.stale) stale++;
    const row = document.createElement("tr");
    row.dataset.workerId = worker.id;
    row.dataset.pid = String(worker.pid);
    if (ages.stale) row.dataset.stale = "true";
    const cells = [
      worker.id,
      worker.host,
      worker.pid,
      worker.queues.join(", "),
      worker.concurrency,
      worker.active_jobs,
      worker.processed,
      worker.failed,
      worker.rss_mb.toFixed(0),
      formatDuration(ages.uptime_ms),
      ages.stale
        ? `stale: ${formatDuration(ages.heartbeat_age_ms)} ago`
        : `${formatDuration(ages.heartbeat_age_ms)} ago`,
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      row.append(cell);
    }
    const controls = document.createElement("td");
    controls.className = "actions admin-only";
    controls.append(button("Recycle", { action: "worker-recycle", worker: worker.id }));
    row.append(controls);
    row.title = `started ${worker.started_at}, last heartbeat ${worker.last_seen}`;
    return row;
  });
  $("#worker-table tbody").replaceChildren(...rows);
  $("#workers-empty").hidden = workers.length > 0;
  setMetric("workers-count", integer(workers.length));
  setMetric("workers-stale", integer(stale));
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
  s.latest.push({ data, label });
  if (s.latest.length > LATEST) s.latest.shift();
  drawSentiment();
}

/** The counts, the minutes and the latest list, from the completions that came since the last draw. */
const drawSentiment = throttled(() => {
  const s = state.sentiment;
  for (const name of [...LABELS, "unlabelled"]) setMetric(`sentiment-${name}`, integer(s[name]));
  renderMinutes();
  const items = s.latest.splice(0).map(({ data, label }) => {
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
    return item;
  });
  const list = $("#sentiment-latest");
  list.prepend(...items.reverse());
  while (list.children.length > LATEST) list.lastElementChild.remove();
});

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

const cell = (text, attributes = {}) => {
  const node = document.createElement("td");
  node.textContent = text === undefined || text === null ? "" : String(text);
  Object.assign(node.dataset, attributes);
  return node;
};
const tr = (...cells) => {
  const row = document.createElement("tr");
  row.append(...cells);
  return row;
};

const clock = (ms) => (ms ? new Date(ms).toTimeString().slice(0, 8) : "");

function renderCache(cache) {
  if (!cache) return;
  setMetric("cache-hit-rate", percent(cache.hit_rate));
  setCounts({
    "cache-hits": cache.hits,
    "cache-misses": cache.misses,
    "cache-tokens-saved": cache.tokens_saved,
    "cache-bypassed": cache.bypassed,
    "cache-stored": cache.stored,
    "cache-not-admitted": cache.not_admitted,
    "cache-errors": cache.errors,
  });
  setMetric("cache-avg-similarity", cache.semantic_hits ? cache.avg_similarity.toFixed(3) : "–");
  setMetric("cache-saved-usd", formatUsd(cache.saved_usd));
  setMetric("cache-embedding-usd", formatUsd(cache.embedding_cost_usd));
  setMetric("cache-net-usd", formatUsd(cache.estimated_cost_saved_usd));
  const rates = hitRatesByTier(cache);
  for (const tier of CACHE_TIERS) {
    const name = tier.replace("_", "-");
    setMetric(`cache-${name}`, integer(rates[tier].hits));
    setMetric(`cache-${name}-rate`, percent(rates[tier].rate));
  }
  const body = $("#cache-refusals tbody");
  const reasons = Object.entries(cache.guard_refusals_by_reason ?? {});
  if (body.children.length !== reasons.length) {
    body.replaceChildren(
      ...reasons.map(([reason]) => tr(cell(reason), cell("–", { metric: `cache-refusal:${reason}` }))),
    );
  }
  for (const [reason, count] of reasons) setMetric(`cache-refusal:${reason}`, integer(count));
  const index = cache.index;
  setMetric("index-name", index?.name ?? "not reported");
  setMetric("index-algorithm", index?.algorithm ?? "–");
  setMetric("index-dims", index ? integer(index.dims) : "–");
  setMetric("index-docs", index ? integer(index.docs) : "–");
  setMetric(
    "index-state",
    !index ? "–" : index.state === "indexing" ? `indexing ${percent(index.percent_indexed)}` : index.state,
  );
  $("#cache-index").dataset.state = index?.state ?? "";
}

function renderKafka(kafka) {
  if (!kafka) return;
  setCounts({
    "kafka-consumed": kafka.events_consumed,
    "kafka-enqueued": kafka.events_enqueued,
    "kafka-dead-lettered": kafka.dead_lettered,
    "kafka-total-lag": kafka.total_lag,
    "kafka-duplicates": kafka.duplicates,
    "kafka-skipped": kafka.events_skipped,
    "kafka-restarts": kafka.consumer_restarts,
  });
  const now = Date.now();
  const partitions = partitionRows(kafka.lag ?? {});
  $("#kafka-partitions tbody").replaceChildren(
    ...partitions.map((p) =>
      tr(cell(p.topic), cell(p.partition), cell(p.lag), cell(p.committed), cell(`${formatDuration(now - p.at)} ago`)),
    ),
  );
  $("#kafka-no-partitions").hidden = partitions.length > 0;
  const letters = kafka.recent_dead_letters ?? [];
  const key = letters.map((l) => `${l.topic}:${l.partition}:${l.offset}`).join(",");
  const body = $("#dead-letters tbody");
  if (body.dataset.key !== key) {
    body.dataset.key = key;
    body.replaceChildren(
      ...letters.map((letter) => {
        const row = tr(
          cell(clock(Date.parse(letter.at))),
          cell(letter.reason, { reason: letter.reason }),
          cell(`${letter.topic} [${letter.partition}] @${letter.offset}`),
          cell(letter.detail),
        );
        row.dataset.offset = letter.offset;
        row.title = letter.detail;
        return row;
      }),
    );
  }
  $("#dead-letters-empty").hidden = letters.length > 0;
}

// Tasks: one page of GET /tasks for the filters, then the completions as they come.

async function api(path) {
  const headers = state.key ? { authorization: `Bearer ${state.key}` } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  const body = await response.json().catch(() => undefined);
  return { status: response.status, body };
}

function tasksNote(text) {
  const note = $("#tasks-note");
  note.hidden = !text;
  note.textContent = text ?? "";
}

async function loadTasks() {
  const form = $("#task-filters");
  const data = new FormData(form);
  const filter = {};
  for (const name of ["status", "task_type", "queue", "tenant"]) filter[name] = String(data.get(name) ?? "").trim();
  state.tasks.filter = filter;
  const { status, body } = await api(`/tasks?${tasksQuery(filter, TASK_ROWS)}`);
  if (status !== 200) {
    tasksNote(
      status === 403
        ? "Other tenants' tasks need a key named in API_ADMINS."
        : (body?.error?.message ?? `GET /tasks: ${status}`),
    );
    state.tasks.rows = [];
  } else {
    tasksNote(undefined);
    state.tasks.rows = body.tasks;
  }
  renderTasks();
  $("#tasks").dataset.loaded = "true";
}

function onTaskCompletion(event) {
  const task = JSON.parse(event.data);
  if (!matchesTaskFilter(state.tasks.filter, task)) return;
  state.tasks.rows = upsertTask(state.tasks.rows, task, TASK_ROWS);
  drawTasks();
  if (state.tasks.detailId === task.task_id) void openDetail(task.task_id);
}

/** A row of the Tasks list; its key changes when what it shows does. */
function taskRow(task) {
  const id = document.createElement("code");
  id.textContent = task.task_id;
  const first = cell("");
  first.append(id);
  const row = tr(
    first,
    cell(task.status, { status: task.status }),
    cell(task.task_type),
    cell(task.queue),
    cell(task.tenant ?? ""),
    cell(clock(task.finished_at ?? task.accepted_at)),
  );
  row.dataset.taskId = task.task_id;
  row.dataset.status = task.status;
  return row;
}
const taskKey = (task) => `${task.task_id}:${task.status}:${task.finished_at ?? task.accepted_at ?? ""}`;

/**
 * Draws the list. Rows that stay are kept in place (a new completion adds a row at the top and drops one at the
 * bottom), so the page lays out what changed.
 */
function renderTasks() {
  const body = $("#task-table tbody");
  const existing = new Map([...body.children].map((row) => [row.dataset.key, row]));
  let cursor = body.firstElementChild;
  for (const task of state.tasks.rows) {
    const key = taskKey(task);
    let row = existing.get(key);
    if (row) existing.delete(key);
    else {
      row = taskRow(task);
      row.dataset.key = key;
    }
    if (task.task_id === state.tasks.detailId) row.dataset.selected = "true";
    else delete row.dataset.selected;
    if (row === cursor) cursor = cursor.nextElementSibling;
    else body.insertBefore(row, cursor);
  }
  for (const row of existing.values()) row.remove();
  $("#tasks-empty").hidden = state.tasks.rows.length > 0;
  const seen = (field) => [...new Set(state.tasks.rows.map((task) => task[field]).filter(Boolean))].sort();
  for (const [list, field] of [
    ["#task-types", "task_type"],
    ["#task-queues", "queue"],
    ["#task-tenants", "tenant"],
  ]) {
    const values = seen(field);
    const node = $(list);
    if (node.dataset.values === values.join(",")) continue;
    node.dataset.values = values.join(",");
    node.replaceChildren(...values.map((value) => Object.assign(document.createElement("option"), { value })));
  }
}
/** Redraws the list at most every LIST_REDRAW_MS, however many completions arrive. */
const drawTasks = throttled(renderTasks);

async function openDetail(id) {
  const taskId = id.trim();
  if (!taskId) return;
  const { status, body } = await api(`/tasks/${encodeURIComponent(taskId)}`);
  if (status !== 200) {
    tasksNote(status === 404 ? `No task with id ${taskId} (or not yours).` : (body?.error?.message ?? `${status}`));
    return;
  }
  tasksNote(undefined);
  state.tasks.detailId = body.task_id;
  for (const row of $("#task-table tbody").children) {
    if (row.dataset.taskId === body.task_id) row.dataset.selected = "true";
    else delete row.dataset.selected;
  }
  renderDetail(body);
}

function renderDetail(task) {
  const detail = $("#task-detail");
  detail.hidden = false;
  detail.dataset.taskId = task.task_id;
  $("[data-action=retry-task]").hidden = task.status !== "FAILURE";
  $("[data-action=cancel-task]").hidden = task.status !== "PENDING" && task.status !== "RETRY";
  $("#detail-id").textContent = task.task_id;
  const badge = $("#detail-status");
  badge.textContent = task.status;
  badge.dataset.status = task.status;
  const result = task.result;
  const timings = taskTimings(task);
  const ms = (value) => (value === undefined ? undefined : formatDuration(value));
  const fields = [
    ["tenant", task.tenant],
    ["task type", task.task_type],
    ["queue", task.queue],
    ["attempts", task.attempts],
    ["accepted", task.accepted_at && new Date(task.accepted_at).toLocaleString()],
    ["queued", ms(timings.queued_ms)],
    ["processing", ms(timings.processing_ms)],
    ["accepted → end", ms(timings.total_ms)],
    ["model", result?.model],
    ["cache", result ? (result.from_cache ? `hit: ${result.cache_tier ?? "cached"}` : "miss (LLM call)") : undefined],
    ["similarity", typeof result?.similarity === "number" ? result.similarity.toFixed(4) : undefined],
    [
      "tokens",
      result
        ? `${result.metadata.tokens_used} (${result.metadata.prompt_tokens} in, ${result.metadata.completion_tokens} out)`
        : undefined,
    ],
  ];
  const list = $("#detail-fields");
  list.replaceChildren(
    ...fields
      .filter(([, value]) => value !== undefined && value !== "")
      .flatMap(([name, value]) => {
        const term = document.createElement("dt");
        term.textContent = name;
        const description = document.createElement("dd");
        description.textContent = String(value);
        description.dataset.field = name;
        return [term, description];
      }),
  );
  $("#detail-input").textContent =
    task.input === undefined
      ? "(not kept: a succeeded task's text is removed with its job)"
      : truncate(task.input, 600, task.input_chars);
  $("#detail-outcome-title").textContent = task.error ? "Error" : "Result";
  $("#detail-outcome").textContent = task.error
    ? `${task.error.code}: ${task.error.message}${task.error.retriable ? " (retriable)" : ""}`
    : result
      ? truncate(result.response, RESULT_CHARS)
      : "(not finished)";
  const attempts = (task.deliveries ?? []).flatMap((delivery) =>
    delivery.attempts.map((attempt) =>
      tr(
        cell(attempt.n),
        cell(clock(Date.parse(attempt.at))),
        cell(attempt.status_code ?? attempt.error ?? ""),
        cell(attempt.state),
        cell(Math.round(attempt.duration_ms)),
      ),
    ),
  );
  $("#detail-deliveries tbody").replaceChildren(...attempts);
  $("#detail-deliveries").hidden = attempts.length === 0;
  $("#detail-no-deliveries").hidden = attempts.length > 0;
  const delivery = task.deliveries?.[0];
  $("#detail-no-deliveries").textContent = delivery
    ? `Webhook to ${delivery.url}: ${delivery.state}, no attempt yet.`
    : "No webhook for this task.";
}

// Control actions (admins): each is one call to /admin/* or /cache/*, with the key as a Bearer header, and
// every one is audited by the server. Destructive ones ask first. The outcome shows in #action-status.

function button(text, data) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = "small";
  node.textContent = text;
  Object.assign(node.dataset, data);
  return node;
}

function actionStatus(text, ok) {
  const note = $("#action-status");
  note.hidden = false;
  note.textContent = text;
  note.dataset.outcome = ok ? "ok" : "error";
  clearTimeout(state.actionTimer);
  state.actionTimer = setTimeout(() => {
    note.hidden = true;
  }, 8000);
}

async function act(label, method, path, body) {
  const headers = state.key ? { authorization: `Bearer ${state.key}` } : {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const init = { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) };
  const response = await fetch(path, init).catch((error) => ({ ok: false, status: 0, error }));
  const answer = response.json ? await response.json().catch(() => undefined) : undefined;
  const ok = response.ok === true;
  actionStatus(ok ? `${label}: done` : `${label}: ${answer?.error?.message ?? `failed (${response.status})`}`, ok);
  return { ok, body: answer };
}

/** The operators' changes: paused queues and Kafka, the LLM rate limit. */
function renderControl(control) {
  state.control = control;
  for (const queue of control.queues) {
    const row = [...$("#queue-table tbody").children].find((r) => r.dataset.queue === queue.name);
    if (!row) continue;
    row.dataset.paused = String(queue.paused);
    const toggle = row.querySelector("[data-action=queue-toggle]");
    toggle.textContent = queue.paused ? "Resume" : "Pause";
    toggle.title = queue.paused ? `paused by ${queue.by} at ${queue.at}` : "workers stop taking its jobs";
  }
  const kafka = $("#kafka-toggle");
  kafka.dataset.paused = String(control.kafka.paused);
  kafka.textContent = control.kafka.paused ? "Resume consumption" : "Pause consumption";
  setMetric("kafka-state", control.kafka.paused ? `paused by ${control.kafka.by}` : "running");
  const limit = control.llm_rate_limit;
  setMetric(
    "rate-limit",
    limit.source === "none"
      ? "none"
      : `${limit.calls} / ${formatDuration(limit.period_ms)} (${limit.source === "operator" ? `set by ${limit.by}` : "LLM_RATE_LIMIT"})`,
  );
}

const ACTIONS = {
  "queue-toggle": ({ queue }, node) => {
    const paused = node.closest("tr")?.dataset.paused === "true";
    return act(
      `${paused ? "Resume" : "Pause"} ${queue}`,
      "POST",
      `/admin/queues/${queue}/${paused ? "resume" : "pause"}`,
    );
  },
  "queue-retry-failed": ({ queue }) =>
    act(`Retry failed tasks of ${queue}`, "POST", `/admin/queues/${queue}/retry-failed`),
  "queue-purge-failed": ({ queue }) =>
    confirm(`Drop every failed job of ${queue}? Their tasks' FAILURE records stay readable.`)
      ? act(`Purge failed jobs of ${queue}`, "POST", `/admin/queues/${queue}/purge-failed`)
      : undefined,
  "worker-recycle": ({ worker }) =>
    confirm(`Recycle worker process ${worker}? A replacement starts, then it drains.`)
      ? act(`Recycle ${worker}`, "POST", `/admin/workers/${encodeURIComponent(worker)}/recycle`)
      : undefined,
  "retry-task": async () => {
    const id = state.tasks.detailId;
    const { ok } = await act(`Retry ${id}`, "POST", `/admin/tasks/${encodeURIComponent(id)}/retry`);
    if (ok) await openDetail(id);
  },
  "cancel-task": async () => {
    const id = state.tasks.detailId;
    const { ok } = await act(`Cancel ${id}`, "POST", `/admin/tasks/${encodeURIComponent(id)}/cancel`);
    if (ok) await openDetail(id);
  },
};

function wireControls() {
  document.addEventListener("click", (event) => {
    const node = event.target.closest("button[data-action]");
    const run = node && ACTIONS[node.dataset.action];
    if (run) void run(node.dataset, node);
  });
  $("#rate-limit").addEventListener("submit", (event) => {
    event.preventDefault();
    const limit = String(new FormData(event.target).get("limit")).trim();
    void act(`Set the LLM rate limit to ${limit}`, "PUT", "/admin/rate-limit", { limit });
  });
  $("#rate-limit-reset").addEventListener("click", () =>
    act("Rate limit back to LLM_RATE_LIMIT", "DELETE", "/admin/rate-limit"),
  );
  $("#kafka-toggle").addEventListener("click", (event) => {
    const paused = event.target.dataset.paused === "true";
    void act(paused ? "Resume Kafka" : "Pause Kafka", "POST", `/admin/kafka/${paused ? "resume" : "pause"}`);
  });
  $("#cache-clear").addEventListener("click", () => {
    if (confirm("Delete every cached answer?")) void act("Clear the cache", "DELETE", "/cache/clear");
  });
  $("#cache-control").addEventListener("submit", (event) => {
    event.preventDefault();
    const entry = String(new FormData(event.target).get("entry")).trim();
    void act(`Delete cache entry ${entry}`, "DELETE", `/cache/${encodeURIComponent(entry)}`);
  });
}

/** An admin's sentiment counts every tenant's results; a tenant's key is refused there and follows its own. */
function startSentiment() {
  const handlers = {
    events: { message: onCompletion },
    // For tests and for the eye: results count from the moment this is set.
    open: () => {
      $("#sentiment").dataset.live = "true";
    },
  };
  return open("/events?task_type=sentiment_analysis&tenant=*", {
    ...handlers,
    forbidden: () => state.sources.push(open("/events?task_type=sentiment_analysis", handlers)),
  });
}

function startTasks() {
  const form = $("#task-filters");
  if (!form.dataset.wired) {
    form.dataset.wired = "true";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void loadTasks();
    });
    form.querySelector("select[name=status]").addEventListener("change", () => void loadTasks());
    $("#task-search-button").addEventListener("click", () => void openDetail($("#task-search").value));
    $("#task-search").addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      void openDetail($("#task-search").value);
    });
    $("#task-table tbody").addEventListener("click", (event) => {
      const row = event.target.closest("tr");
      if (row?.dataset.taskId) void openDetail(row.dataset.taskId);
    });
  }
  void loadTasks();
  // Every namespace an admin (or a deployment without keys) may see; a tenant's key is refused, and follows its own.
  const handlers = { events: { message: onTaskCompletion } };
  return open("/events?tenant=*", { ...handlers, forbidden: () => state.sources.push(open("/events", handlers)) });
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
          // Only an admin (or anyone, without keys) gets this stream: the controls show.
          document.body.dataset.admin = "true";
          const config = JSON.parse(event.data);
          state.prices = config.prices_usd_per_mtok;
          if (config.worker_heartbeat_ms) state.heartbeatMs = config.worker_heartbeat_ms;
        },
        metrics: onMetrics,
        workers: onWorkers,
      },
      forbidden: () => {
        document.body.dataset.admin = "false";
        const note = $("#overview-note");
        note.hidden = false;
        note.textContent = "The overview spans every tenant: it needs a key named in API_ADMINS.";
      },
    }),
    startSentiment(),
    startTasks(),
  ];
}

async function main() {
  wireControls();
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
