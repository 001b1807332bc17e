/** `bun bench --help`. */

import { CONSOLE_DEFAULTS, DEFAULTS } from "./options";
import { SCENARIOS } from "./scenarios";
import { isPending } from "./scenarios/scenario";

export function helpText(): string {
  const scenarios = SCENARIOS.map(
    (s) =>
      `  ${s.name.padEnd(13)} ${s.description}${isPending(s) ? ` (not available yet: arrives with issue ${s.arrivesWith.issue})` : ""}`,
  ).join("\n");
  return `bun bench [scenario] [flags]     load-test AI-EventStream (default scenario: http)
bun bench compare a.json b.json  b's figures as ratios of a's
bun bench report result.json     (re)write the HTML report of a result

Scenarios:
${scenarios}

Load model:
  --mode open|closed|step   open: constant rate, latency from the intended send time (coordinated
                            omission corrected, as wrk2); closed: --concurrency callers back to back;
                            step: open loop at rising rates, finds the highest held under --p99-target
                            [${DEFAULTS.mode}]
  --rate N                  requests (tasks) per second in open mode [${DEFAULTS.rate}; console: ${Number(CONSOLE_DEFAULTS.rate).toFixed(2)}, 10,000/min]
  --duration D              measured phase, e.g. 30s, 2m, 500ms [${DEFAULTS.duration}; console: ${CONSOLE_DEFAULTS.duration}]
  --warmup D                unmeasured warm-up before it [${DEFAULTS.warmup}; console: ${CONSOLE_DEFAULTS.warmup}]
  --concurrency N           closed-loop callers [${DEFAULTS.concurrency}]
  --steps S:M:I             step mode: start:max:increment in /s [${DEFAULTS.steps}]
  --p99-target MS           step mode: a step holds if P99 ≤ this, errors ≤ 0.1 %, throughput ≥ 97 % [${DEFAULTS["p99-target"]}]
  --connections N           keep-alive connections at most [${DEFAULTS.connections}] (e2e: at least 256)
  --timeout D               an answer later than this is an error [${DEFAULTS.timeout}]

Target (default: the harness starts the app: bun src/main.ts):
  --url http://host:port    a running deployment instead; --pid N samples its CPU/RSS
  --redis-url URL           database of the app the harness starts; it is EMPTIED [${DEFAULTS["redis-url"]}]
  --llm simulated|mock      simulated provider, or the project's mock OpenAI server [${DEFAULTS.llm}]
                            (stream: always the mock server, which says when it sent each first token)
  --latency MS|MIN-MAX|lognormal:MEDIAN:P99
                            LLM latency of either [${DEFAULTS.latency}]; stream: before the first token
  --rate-limit N/PERIOD     LLM_RATE_LIMIT of the app, e.g. 2000/1s [none]
  --rate-burst N            LLM_RATE_BURST of the app: calls at once above the limit's spacing [0]
  --jobs-per-process N|auto WORKER_JOBS_PER_PROCESS of the app [the app's default: auto]
  --tokens N                stream: tokens of each answer, 1..4000 [${DEFAULTS.tokens}]
  --token-latency MS        stream: ms between two tokens [${DEFAULTS["token-latency"]}]
  --workers N|auto          WORKER_CONCURRENCY of the app [${DEFAULTS.workers}]
  --brokers H:P[,H:P]       Kafka (baseline) [${DEFAULTS.brokers}]
  --text T, --task-type T   the request body [a 79-character review, ${DEFAULTS["task-type"]}]
  --mix M                   cache: shares of repeated, near-duplicate and new texts [${DEFAULTS.mix}]
  --wait D                  e2e: GET /task/:id?wait= [${DEFAULTS.wait}]
  --embeddings local|simulated  cache-quality: the embedder the labelled pairs go through [${DEFAULTS.embeddings}]
  --limit N                 cache-quality: at most N pairs, spread over every kind [all]
  --calibrate               cache-quality: the threshold per task type (false hits ≤ 0.5 %, guard on),
                            printed for CACHE_SIMILARITY_THRESHOLDS
  --path module|http|both   cache-quality: the cache module directly, or each pair as two tasks
                            through the app the harness starts (from_cache, cache_tier) [${DEFAULTS.path}]
  --subscribers N           events: GET /events streams held open in the middle part [${DEFAULTS.subscribers}]
  --slow-client             events: then a client that reads nothing for --slow-seconds [${DEFAULTS["slow-seconds"]}]
                            while --slow-events [${DEFAULTS["slow-events"]}] completions flow; the API's RSS is sampled
  --redis-stats             http, e2e, kafka: Redis commands (per name), round trips and CPU per task over the
                            measured part, from INFO stats/cpu/commandstats of --redis-url's server (server-wide:
                            other clients of that server inflate it)
  --cpu-prof DIR            the app the harness starts, and each of its worker processes, write a CPU profile
                            (.cpuprofile and .md, Bun's --cpu-prof through BUN_OPTIONS) into DIR when they exit

Output:
  --out DIR                 JSON + HTML report [${DEFAULTS.out}]
  --name LABEL              added to the file names
  --quiet                   no progress line

Ctrl-C stops the run, drains briefly and still writes the partial results.
Exit codes: 0 done, 1 the run failed, 2 bad usage or scenario not available, 130 interrupted.`;
}
