/**
 * `bun bench events`: what open SSE subscribers cost the API. The same POST
 * /process load runs three times against one app (API and workers): without
 * subscribers, with --subscribers (1,000) open GET /events streams that
 * receive a live trickle of completions, and without them again. The
 * subscribers' part is compared with the mean of the two around it, so a
 * drift of the machine during the run does not read as their cost. Issue 15
 * asks for the rate with them within 20 % of the rate without.
 *
 * Then, with --slow-client, one client opens GET /events and reads nothing
 * for --slow-seconds while --slow-events completions flow to it, and the
 * API process's RSS is sampled throughout: the SSE writer drops the client
 * at SSE_MAX_BUFFER_BYTES, so memory stays flat.
 */
import { connect } from "node:net";
import { join } from "node:path";
import { measurePart } from "../load/measure-load";
import type { PartResult } from "../result";
import { resolveTarget } from "../targets/app-target";
import { postProcessOperation } from "./post-process";
import type { Scenario } from "./scenario";

const ROOT = join(import.meta.dir, "..", "..");
/**
 * The subscribers follow the completions of this task type, which a trickle of 20 tasks a second feeds: the
 * dashboards are live, and the measured load (--task-type, another type) is not multiplied by 1,000 readers.
 */
const TRICKLE_TYPE = "classification";

/** RSS of a process and its children, MB (Linux /proc), or undefined elsewhere. */
async function rssMb(pid: number): Promise<number | undefined> {
  const ps = Bun.spawnSync(["ps", "-o", "rss=", "-p", String(pid)]);
  const kb = Number(ps.stdout.toString().trim());
  return Number.isFinite(kb) && kb > 0 ? Math.round(kb / 1024) : undefined;
}

/** The pid of the process that listens on the app's port: the API (the root pid when it runs every role). */
function apiPid(url: string, fallback: number | undefined): number | undefined {
  const port = new URL(url).port;
  const ss = Bun.spawnSync(["ss", "-ltnpH", `sport = :${port}`]);
  const match = /pid=(\d+)/.exec(ss.stdout.toString());
  return match ? Number(match[1]) : fallback;
}

/**
 * A trickle of tasks of the type the subscribers follow, so their streams are live. Each request has its own
 * deadline and the stop signal: one fetch that never answered kept the scenario waiting for ever.
 */
async function trickle(url: string, perSecond: number, signal: AbortSignal): Promise<number> {
  let sent = 0;
  while (!signal.aborted) {
    const response = await fetch(`${url}/process`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: `live event ${sent} for the dashboards`, task_type: TRICKLE_TYPE }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
    }).catch(() => undefined);
    if (response?.status === 202) sent++;
    await response?.body?.cancel().catch(() => {});
    await Bun.sleep(1000 / perSecond);
  }
  return sent;
}

export const eventsScenario: Scenario = {
  name: "events",
  description: "POST /process with and without 1,000 live SSE subscribers; a slow SSE client's memory (--slow-client)",
  async run({ options, progress, signal }) {
    const subscribers = options.subscribers;
    const target = await resolveTarget(options, progress, {
      roles: "api,worker",
      env: options.slowClient ? { SSE_MAX_BUFFER_BYTES: "1048576", SSE_SLOW_CLIENT_GRACE_MS: "600000" } : {},
    });
    const { operation, pool } = postProcessOperation(target.url, options);
    const request = {
      name: "POST /process",
      unit: "requests",
      operation,
      options,
      progress,
      signal,
      ...(target.pid === undefined ? {} : { targetPid: target.pid }),
    };
    const mode = options.mode === "step" ? "closed" : options.mode;
    if (options.taskType === TRICKLE_TYPE)
      throw new Error(`--task-type ${TRICKLE_TYPE} is what the subscribers follow: measure another task type`);
    const parts: PartResult[] = [];
    const extra: Record<string, number | string> = {};
    try {
      parts.push(await measurePart(request, mode, options.rate, "without subscribers"));

      progress.note(`opening ${subscribers} SSE subscribers on GET /events`);
      const load = Bun.spawn(
        [
          "bun",
          "tools/sse-load.ts",
          "dashboards",
          "--url",
          target.url,
          "--count",
          String(subscribers),
          "--query",
          `task_type=${TRICKLE_TYPE}`,
        ],
        // The fetch cap raised here, so the script runs as this very process and gets the signal below.
        { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "8192" } },
      );
      const stderr = load.stderr.getReader();
      const decoder = new TextDecoder();
      let said = "";
      while (!/ready \d+/.test(said)) {
        const { value, done } = await stderr.read();
        if (done) throw new Error(`the subscribers' process ended before it was ready: ${said}`);
        said += decoder.decode(value);
      }
      const opened = Number(/ready (\d+)/.exec(said)?.[1] ?? 0);
      progress.note(`${opened} subscribers open; measuring with a trickle of 20 completions/s to each`);
      const stopTrickle = new AbortController();
      const trickled = trickle(target.url, 20, stopTrickle.signal);
      parts.push(await measurePart(request, mode, options.rate, `with ${opened} SSE subscribers`));
      stopTrickle.abort();
      const trickleSent = await trickled;
      load.kill("SIGUSR2");
      const report = JSON.parse(await new Response(load.stdout).text()) as { opened: number; events: number };
      await load.exited;
      extra.subscribers_opened = report.opened;
      extra.subscriber_events_received = report.events;
      extra.trickle_tasks = trickleSent;

      parts.push(await measurePart(request, mode, options.rate, "without subscribers, again"));
      const [before, during, after] = parts as [PartResult, PartResult, PartResult];
      const baseline = (before.throughput + after.throughput) / 2;
      extra.rate_ratio_with_subscribers = baseline > 0 ? Math.round((during.throughput / baseline) * 1000) / 1000 : 0;
      progress.note(
        `acceptance with subscribers: ${during.throughput}/s against ${baseline.toFixed(1)}/s without (ratio ${extra.rate_ratio_with_subscribers})`,
      );

      if (options.slowClient) Object.assign(extra, await slowClient(target.url, target.pid, options, progress));
      (parts[1] as PartResult).extra = { ...(parts[1] as PartResult).extra, ...extra };
      return { target: target.describe, parts };
    } finally {
      pool.close();
      await target.stop();
    }
  },
};

async function slowClient(
  url: string,
  rootPid: number | undefined,
  options: { slowSeconds: number; slowEvents: number },
  progress: { note(text: string): void },
): Promise<Record<string, number>> {
  const pid = apiPid(url, rootPid);
  if (pid === undefined) throw new Error("--slow-client needs the API's pid (run without --url, or pass --pid)");
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.pause();
  socket.write(`GET /events HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
  const startRss = (await rssMb(pid)) ?? 0;
  let peakRss = startRss;
  progress.note(
    `slow client: reads nothing for ${options.slowSeconds} s while ${options.slowEvents} completions flow; API RSS ${startRss} MB`,
  );
  const started = Date.now();
  const perSecond = options.slowEvents / options.slowSeconds;
  let sent = 0;
  // Large answers make the events heavy: 2 KB texts, so 10,000 events are ~30 MB of SSE for the slow client.
  const text = "The delivery was late and the box was damaged. ".repeat(40);
  while (Date.now() - started < options.slowSeconds * 1000) {
    const due = Math.min(options.slowEvents, Math.floor(((Date.now() - started) / 1000) * perSecond));
    const batch: Promise<unknown>[] = [];
    for (; sent < due; sent++) {
      batch.push(
        fetch(`${url}/process`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ text: `${sent} ${text}`, task_type: "summarization", use_cache: false }),
        }),
      );
    }
    await Promise.all(batch);
    peakRss = Math.max(peakRss, (await rssMb(pid)) ?? 0);
    await Bun.sleep(250);
  }
  const endRss = (await rssMb(pid)) ?? 0;
  socket.destroy();
  progress.note(`slow client: API RSS ${startRss} → peak ${peakRss} → ${endRss} MB over ${sent} completions`);
  return {
    slow_client_seconds: options.slowSeconds,
    slow_client_completions: sent,
    api_rss_start_mb: startRss,
    api_rss_peak_mb: peakRss,
    api_rss_end_mb: endRss,
  };
}
