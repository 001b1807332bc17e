/**
 * `bun bench stream`: POST /process with `"stream": true`, then GET
 * /task/:id/stream until its end event, against the app the harness starts
 * (api and worker processes) and the project's mock OpenAI server, which
 * streams --tokens tokens --token-latency ms apart after --latency ms.
 *
 * The harness's latency is time to result (the intended send of the POST →
 * the end event). Beside it, time to first token in two parts of their own:
 * from the POST (what a user waits), and from the moment the mock sent the
 * first token (the relay alone: worker → Redis → API → client), read from the
 * mock's /__mock/streams record of the task (both clocks are epoch ms of one
 * machine: `performance.timeOrigin + performance.now()`). Each task sends a
 * text of its own, which finds its record and keeps it out of the cache.
 */
import { createDurationHistogram, encodeHistogram, recordMs } from "../../src/metrics/histogram";
import { measureLoad } from "../load/measure-load";
import type { Operation } from "../load/open-loop";
import type { Outcome } from "../measure/recorder";
import { type PartResult, percentiles } from "../result";
import { resolveTarget } from "../targets/app-target";
import type { Scenario } from "./scenario";

const epochMs = () => performance.timeOrigin + performance.now();

interface StreamedTask {
  text: string;
  /** Epoch ms: when the POST left, when the first token event arrived. */
  postedAt: number;
  firstTokenAt: number;
  tokenEvents: number;
}

/** Reads an SSE body until `event: end`; the arrival of the first `event: token`, and how many came. */
async function readStream(
  response: Response,
): Promise<{ firstTokenAt: number | undefined; tokens: number; ended: boolean }> {
  const decoder = new TextDecoder();
  let buffer = "";
  let firstTokenAt: number | undefined;
  let tokens = 0;
  for await (const chunk of response.body as ReadableStream<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let blank = buffer.indexOf("\n\n");
    while (blank >= 0) {
      const block = buffer.slice(0, blank);
      buffer = buffer.slice(blank + 2);
      const type = /^event: (.*)$/m.exec(block)?.[1];
      if (type === "token") {
        tokens++;
        firstTokenAt ??= epochMs();
      } else if (type === "end") {
        await response.body?.cancel().catch(() => {});
        return { firstTokenAt, tokens, ended: true };
      }
      blank = buffer.indexOf("\n\n");
    }
  }
  return { firstTokenAt, tokens, ended: false };
}

function ttftPart(name: string, samples: readonly number[], durationS: number): PartResult {
  const histogram = createDurationHistogram();
  for (const ms of samples) recordMs(histogram, Math.max(0, ms));
  return {
    name,
    mode: "fixed",
    durationS,
    sent: samples.length,
    completed: samples.length,
    errors: {},
    throughput: durationS > 0 ? Math.round((samples.length / durationS) * 10) / 10 : 0,
    unit: "tasks",
    latencyMs: percentiles(histogram),
    histogram: encodeHistogram(histogram),
    timeline: [],
    resources: {},
    interrupted: false,
  };
}

export const streamScenario: Scenario = {
  name: "stream",
  description:
    "POST /process stream:true → GET /task/:id/stream: time to first token (from POST, from the mock's send) and to result",
  async run({ options, progress, signal }) {
    // Always the mock server: it streams, and it says when it sent each first token.
    const target = await resolveTarget({ ...options, llm: "mock" }, progress, {
      roles: "api,worker",
      mockArgs: ["--tokens", String(options.tokens), "--token-latency", String(options.tokenLatencyMs)],
    });
    const mockUrl = target.mockUrl;
    const runId = crypto.randomUUID().slice(0, 8);
    let measuring = false;
    const measured: StreamedTask[] = [];
    const timeoutMs = options.waitMs + options.timeoutMs;

    const operation: Operation = async (index): Promise<Outcome> => {
      const text = `stream ${runId} ${index}: ${options.text}`;
      const counted = measuring;
      const postedAt = epochMs();
      const sentAt = performance.now();
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
      try {
        const accepted = await fetch(`${target.url}/process`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ text, task_type: options.taskType, use_cache: false, stream: true }),
          signal: deadline,
        });
        if (accepted.status !== 202) return { ok: false, kind: `http_${accepted.status}`, sentAt };
        const { task_id } = (await accepted.json()) as { task_id: string };
        const stream = await fetch(`${target.url}/task/${encodeURIComponent(task_id)}/stream`, {
          headers: { accept: "text/event-stream" },
          signal: deadline,
        });
        if (stream.status !== 200) return { ok: false, kind: `stream_http_${stream.status}`, sentAt };
        const { firstTokenAt, tokens, ended } = await readStream(stream);
        if (!ended) return { ok: false, kind: "stream_unended", sentAt };
        if (firstTokenAt === undefined) return { ok: false, kind: "no_token", sentAt };
        if (counted) measured.push({ text, postedAt, firstTokenAt, tokenEvents: tokens });
        return { ok: true, sentAt };
      } catch {
        return { ok: false, kind: deadline.aborted ? "timeout" : "connect", sentAt };
      }
    };

    try {
      const outcome = await measureLoad({
        name: "POST /process → stream end (time to result)",
        unit: "tasks",
        operation,
        options,
        progress,
        signal,
        ...(target.pid === undefined ? {} : { targetPid: target.pid }),
        beforeMeasure: async () => {
          measuring = true;
        },
        afterMeasure: async () => {
          const n = Math.max(1, measured.length);
          return {
            tokens_per_answer: options.tokens,
            token_latency_ms: options.tokenLatencyMs,
            token_events_per_task: Math.round((measured.reduce((sum, t) => sum + t.tokenEvents, 0) / n) * 10) / 10,
          };
        },
      });
      const durationS = outcome.parts[0]?.durationS ?? 0;
      const fromPost = measured.map((task) => task.firstTokenAt - task.postedAt);
      const parts = [...outcome.parts, ttftPart("first token, from the POST", fromPost, durationS)];
      if (mockUrl) {
        const records = (await (await fetch(`${mockUrl}/__mock/streams`)).json()) as {
          user: string;
          first_token_at: number;
        }[];
        const sentAt = new Map(records.map((record) => [record.user, record.first_token_at]));
        const fromMock = measured.flatMap((task) => {
          const sent = sentAt.get(task.text.slice(0, 200));
          return sent === undefined ? [] : [task.firstTokenAt - sent];
        });
        parts.push(ttftPart("first token, from the mock's send", fromMock, durationS));
      }
      return {
        target: `${target.describe}; ${options.tokens} tokens ${options.tokenLatencyMs} ms apart after ${options.latency} ms`,
        ...outcome,
        parts,
      };
    } finally {
      await target.stop();
    }
  },
};
