/**
 * `bun bench console`: the operator console (/dashboard) open in a real headless Chromium while a steady load
 * flows through the app: --rate events a second (default 10,000 a minute) for --duration (default 10 minutes),
 * half of them POST /process, half Kafka events on a topic of the app's own, 2 % failing for good (the mock
 * provider answers 400 to their text), sentiment analyses and summaries in turns. The harness starts the app
 * (api, consumer and worker roles) with the project's mock OpenAI server at --latency.
 *
 * What it measures of the page (bench/console/page.ts says how), every 10 s of the measured phase (a third of
 * it, for runs under 30 s): the main thread's busy share (target under 20 %), the JS heap after a forced GC and
 * the DOM nodes (target: flat; their slope per minute), long tasks, and the time from a task's end to the page
 * counting it (every sentiment_analysis completion of the measured phase). The load's own figures (accept
 * latency of the posts and produces, the app's CPU) are the part's, as in every scenario.
 */
import { Partitioners } from "kafkajs";
import {
  busyBetween,
  type ConsoleReport,
  type ConsoleSample,
  lagsToPage,
  overallShare,
  type PageMetrics,
  percentileOf,
  summarizeSeries,
} from "../console/analysis";
import { followCompletions } from "../console/completions";
import {
  drainPage,
  openConsolePage,
  pageNumber,
  readMetrics,
  rendererMainThread,
  threadCpuSeconds,
} from "../console/page";
import { consoleHeadline } from "../console/report";
import { buildRequest, createHttpPool } from "../http/raw-client";
import { kafkaClient, waitForConsumerGroup } from "../kafka-common";
import { measureLoad } from "../load/measure-load";
import type { Operation } from "../load/open-loop";
import { createResourceSampler } from "../measure/resources";
import { MissingServiceError, UsageError } from "../options";
import { resolveTarget } from "../targets/app-target";
import type { Scenario } from "./scenario";

const PARTITIONS = 2;
/**
 * One event in FAIL_EVERY has a text the mock provider answers 400 to: it fails at its first attempt, for good.
 * In every 100, the 50th (produced: odd) and the 99th (posted: even), so both paths have failures.
 */
const FAIL_EVERY = 50;
const fails = (n: number) => n % 100 === 49 || n % 100 === 98;
const FAIL_TEXT = "bench: please fail this one";
const TEXTS = [
  "The delivery was fast and the product works well, but the manual is confusing.",
  "Terrible support, the parcel arrived broken and nobody answered my emails.",
  "The quarterly report shows revenue up 4 % and costs flat; the outlook is unchanged.",
];
const BUSY_TARGET = 0.2;

/** Seconds between two samples: 10, or a third of a short run (the CI's), at least 1. */
export function sampleEveryMs(durationMs: number): number {
  return durationMs >= 30_000 ? 10_000 : Math.max(1000, Math.floor(durationMs / 3));
}

export const consoleScenario: Scenario = {
  name: "console",
  description:
    "the operator console in headless Chromium under --rate events/s (HTTP + Kafka, 2 % failing): main-thread busy share, heap, DOM nodes",
  async run({ options, progress, signal }) {
    if (options.url) {
      throw new UsageError("console starts the app itself (it needs the mock provider's faults): drop --url");
    }
    const runId = `bench-console-${process.pid}-${Date.now().toString(36)}`;
    const topic = `${runId}-in`;
    const groupId = `${runId}-group`;
    const kafka = kafkaClient(options.brokers, "bench-console");
    const admin = kafka.admin();
    await admin.connect().catch((error: unknown) => {
      throw new MissingServiceError(
        `Kafka is not reachable at ${options.brokers.join(",")} (${String(error)}): start it with \`bun run services:up\``,
      );
    });
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    const stops: (() => Promise<unknown>)[] = [
      async () => {
        await producer.disconnect().catch(() => {});
        await admin.deleteTopics({ topics: [topic] }).catch(() => {});
        await admin.deleteGroups([groupId]).catch(() => {});
        await admin.disconnect();
      },
    ];
    const stopAll = async () => {
      for (const stop of stops.splice(0).reverse()) await stop();
    };
    try {
      const target = await resolveTarget({ ...options, llm: "mock" }, progress, {
        roles: "api,consumer,worker",
        env: {
          KAFKA_BROKERS: options.brokers.join(","),
          KAFKA_TOPIC_IN: topic,
          KAFKA_GROUP_ID: groupId,
          KAFKA_TOPIC_OUT: "",
        },
      });
      stops.push(target.stop);
      const fault = await fetch(`${target.mockUrl}/__mock/fault`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "400", textIncludes: FAIL_TEXT, endpoint: "chat" }),
      });
      if (!fault.ok) throw new Error(`the mock server refused the fault: ${fault.status}`);
      await waitForConsumerGroup(target.url, PARTITIONS);

      // Opened before any load: the scenario and the page count the same completions from the first.
      const follower = await followCompletions(target.url);
      stops.push(async () => follower.close());
      progress.note("opening /dashboard in headless Chromium");
      const page = await openConsolePage(target.url);
      stops.push(page.close);

      // The load: even sequence numbers are posted, odd ones produced.
      const base = new URL(target.url);
      const pool = createHttpPool({
        url: target.url,
        maxConnections: options.connections,
        timeoutMs: options.timeoutMs,
      });
      stops.push(async () => pool.close());
      let sequence = 0;
      const operation: Operation = async () => {
        const n = sequence++;
        const text = `${fails(n) ? FAIL_TEXT : TEXTS[n % TEXTS.length]} (#${n})`;
        const taskType = Math.floor(n / 2) % 2 === 0 ? "sentiment_analysis" : "summarization";
        if (n % 2 === 0) {
          const body = JSON.stringify({ text, task_type: taskType, use_cache: false });
          const response = await pool.request(
            buildRequest("POST", base, "/process", body, { "Content-Type": "application/json" }),
          );
          return response.status === 202
            ? { ok: true, sentAt: response.sentAt }
            : { ok: false, kind: `http_${response.status}`, sentAt: response.sentAt };
        }
        const eventId = `${runId}-${n}`;
        const sentAt = performance.now();
        try {
          await producer.send({
            topic,
            messages: [
              {
                key: `user-${n % 1000}`,
                value: JSON.stringify({ event_id: eventId, text, task_type: taskType, use_cache: false }),
              },
            ],
          });
          return { ok: true, sentAt };
        } catch {
          return { ok: false, kind: "produce_failed", sentAt };
        }
      };

      // The page's samples.
      const everyMs = sampleEveryMs(options.durationMs);
      const samples: ConsoleSample[] = [];
      const shown: [number, number][] = [];
      const measured = { from: 0, to: 0 };
      let longTaskMaxMs = 0;
      let measureStart = 0;
      let baseline: PageMetrics | undefined;
      const mainThread = rendererMainThread(page.pid);
      let cpuBase: number | undefined;
      let sampling: Promise<void> = Promise.resolve();
      let timer: ReturnType<typeof setInterval> | undefined;
      const browserUse = page.pid === undefined ? undefined : createResourceSampler(page.pid);
      const sample = async () => {
        if (!baseline) return;
        const end = await readMetrics(page.client);
        const cpuEnd = mainThread && threadCpuSeconds(mainThread);
        const drained = await drainPage(page.page);
        await page.client.send("HeapProfiler.collectGarbage");
        const after = await readMetrics(page.client);
        const share = busyBetween(baseline, end);
        const cpu =
          cpuEnd !== undefined && cpuBase !== undefined && share.wallS > 0 ? (cpuEnd - cpuBase) / share.wallS : -1;
        baseline = after;
        cpuBase = mainThread && threadCpuSeconds(mainThread);
        browserUse?.sample();
        longTaskMaxMs = Math.max(longTaskMaxMs, drained.longTaskMaxMs);
        shown.push(...drained.shown);
        const point: ConsoleSample = {
          at: Math.round((performance.now() - measureStart) / 100) / 10,
          wallS: Math.round(share.wallS * 1000) / 1000,
          busy: share.busy,
          script: share.script,
          layout: share.layout,
          style: share.style,
          mainThreadCpu: cpu,
          heapMiB: after.JSHeapUsedSize / 2 ** 20,
          nodes: after.Nodes,
          documentNodes: drained.documentNodes,
          listeners: after.JSEventListeners,
          longTasks: drained.longTasks,
          longTaskMs: drained.longTaskMs,
        };
        samples.push(point);
        progress.note(
          `  console @${point.at.toFixed(0)} s: busy ${(point.busy * 100).toFixed(1)} % (script ${(point.script * 100).toFixed(1)} %), main thread CPU ${(point.mainThreadCpu * 100).toFixed(1)} %, heap ${point.heapMiB.toFixed(2)} MiB, nodes ${point.nodes} (${point.documentNodes} in the document), long tasks ${point.longTasks}`,
        );
      };
      const tick = () => {
        sampling = sampling.then(sample).catch((error: unknown) => progress.note(`  console sample failed: ${error}`));
      };

      const outcome = await measureLoad({
        name: "events in (POST /process → 202, Kafka produce → ack)",
        unit: "events",
        operation,
        options,
        progress,
        signal,
        ...(target.pid === undefined ? {} : { targetPid: target.pid }),
        beforeMeasure: async () => {
          measured.from = Date.now();
          // The warm-up's GC-free start: one forced GC, then the first interval begins.
          await page.client.send("HeapProfiler.collectGarbage");
          await drainPage(page.page);
          baseline = await readMetrics(page.client);
          cpuBase = mainThread && threadCpuSeconds(mainThread);
          measureStart = performance.now();
          browserUse?.start();
          timer = setInterval(tick, everyMs);
        },
        afterMeasure: async () => {
          clearInterval(timer);
          await sampling;
          // The tail since the last sample, when it is long enough to say something (the drain of the load is in it).
          const since = performance.now() - measureStart - (samples.at(-1)?.at ?? 0) * 1000;
          if (since >= everyMs / 2) tick();
          await sampling;
          measured.to = Date.now();
          return {};
        },
      });

      // Drained: the page's counters against /metrics (both settle within a few seconds).
      const metricsNow = async () =>
        (await (await fetch(`${target.url}/metrics`)).json()) as { completed_tasks: number; failed_tasks: number };
      let last = await metricsNow();
      for (let i = 0; i < 30 && !signal.aborted; i++) {
        await Bun.sleep(1500);
        const now = await metricsNow();
        const same = now.completed_tasks === last.completed_tasks && now.failed_tasks === last.failed_tasks;
        last = now;
        if (same) break;
      }
      await Bun.sleep(2000);
      const final = {
        pageCompleted: await pageNumber(page.page, "completed"),
        metricsCompleted: last.completed_tasks,
        pageFailed: await pageNumber(page.page, "failed"),
        metricsFailed: last.failed_tasks,
      };

      shown.push(...(await drainPage(page.page)).shown);
      const { completions, lags } = lagsToPage(follower.finishes, shown, measured);
      lags.sort((a, b) => a - b);
      const points = (pick: (s: ConsoleSample) => number) => samples.map((s) => [s.at, pick(s)] as const);
      const report: ConsoleReport = {
        eventsPerMin: options.rate * 60,
        mix: `½ POST /process, ½ Kafka events; 1 in ${FAIL_EVERY} failing (mock 400); sentiment_analysis and summarization`,
        sampleEveryS: everyMs / 1000,
        samples,
        busy: {
          overall: overallShare(samples, (s) => s.busy),
          maxInterval: Math.max(0, ...samples.map((s) => s.busy)),
          target: BUSY_TARGET,
        },
        mainThreadCpu: samples.every((s) => s.mainThreadCpu >= 0)
          ? {
              overall: overallShare(samples, (s) => s.mainThreadCpu),
              maxInterval: Math.max(0, ...samples.map((s) => s.mainThreadCpu)),
            }
          : { overall: -1, maxInterval: -1 },
        heapMiB: summarizeSeries(points((s) => s.heapMiB)),
        nodes: summarizeSeries(points((s) => s.nodes)),
        documentNodes: summarizeSeries(points((s) => s.documentNodes)),
        longTasks: {
          count: samples.reduce((n, s) => n + s.longTasks, 0),
          totalMs: Math.round(samples.reduce((n, s) => n + s.longTaskMs, 0)),
          maxMs: Math.round(longTaskMaxMs),
        },
        completionToPageMs: {
          completions,
          seen: lags.length,
          p50: percentileOf(lags, 50),
          p95: percentileOf(lags, 95),
          max: lags.at(-1) ?? 0,
        },
        final,
      };
      const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;
      const browser = browserUse?.summary();
      const part = outcome.parts[0];
      if (part) {
        part.extra = {
          ...part.extra,
          console_busy_overall: round(report.busy.overall),
          console_busy_max_interval: round(report.busy.maxInterval),
          console_main_thread_cpu: round(report.mainThreadCpu.overall),
          console_heap_first_mib: round(report.heapMiB.first, 2),
          console_heap_last_mib: round(report.heapMiB.last, 2),
          console_heap_slope_mib_per_min: report.heapMiB.slopePerMin,
          console_heap_last_half_slope_mib_per_min: report.heapMiB.lastHalfSlopePerMin,
          console_nodes_first: report.nodes.first,
          console_nodes_last: report.nodes.last,
          console_nodes_slope_per_min: report.nodes.slopePerMin,
          console_nodes_last_half_slope_per_min: report.nodes.lastHalfSlopePerMin,
          console_long_tasks: report.longTasks.count,
          console_completion_to_page_p50_ms: report.completionToPageMs.p50,
          console_completion_to_page_p95_ms: report.completionToPageMs.p95,
          ...(browser ? { browser_cpu_percent: browser.cpuPercent, browser_peak_rss_mib: browser.peakRssMiB } : {}),
        };
      }
      progress.note(consoleHeadline(report));
      return {
        target: `${target.describe}; topic ${topic}; /dashboard in headless Chromium 1280×800`,
        ...outcome,
        console: report,
      };
    } finally {
      await stopAll();
    }
  },
};
