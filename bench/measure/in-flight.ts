/**
 * The worker processes' jobs in flight over time, from GET /workers (each
 * worker's heartbeat, every 2 s), sampled once a second over the measured
 * part: the timeline of the limit, what was in flight and why, and whether
 * heartbeats and stall checks kept their timing under load.
 */

interface WorkerRow {
  id: string;
  rss_mb: number;
  heartbeat_gap_ms?: number;
  jobs_in_flight?: {
    limit: number;
    in_flight: number;
    reason: string;
    event_loop_delay_ms: number;
    latency_ms?: number;
  };
  stall_check?: { interval_ms: number; max_gap_ms: number; requeued: number };
}

export interface InFlightSample {
  /** Seconds since the sampling started. */
  t: number;
  in_flight: number;
  limit: number;
  reasons: string;
  rss_mb: number;
}

export function createInFlightSampler(baseUrl: string, intervalMs = 1000) {
  const samples: InFlightSample[] = [];
  let heartbeatGapMax = 0;
  let stallGapMax = 0;
  let stallInterval = 0;
  let requeued = 0;
  let eventLoopMax = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  let started = 0;
  /** RSS of the worker processes at the start, MiB: the jobs' memory is what comes on top. */
  let baseRss: number | undefined;

  const sample = async () => {
    try {
      const response = await fetch(`${baseUrl}/workers`, { signal: AbortSignal.timeout(2000) });
      const { workers } = (await response.json()) as { workers: WorkerRow[] };
      let inFlight = 0;
      let limit = 0;
      let rss = 0;
      const reasons = new Set<string>();
      for (const w of workers) {
        rss += w.rss_mb;
        heartbeatGapMax = Math.max(heartbeatGapMax, w.heartbeat_gap_ms ?? 0);
        if (w.stall_check) {
          stallGapMax = Math.max(stallGapMax, w.stall_check.max_gap_ms);
          stallInterval = w.stall_check.interval_ms;
          requeued = Math.max(requeued, w.stall_check.requeued);
        }
        if (w.jobs_in_flight) {
          inFlight += w.jobs_in_flight.in_flight;
          limit += w.jobs_in_flight.limit;
          reasons.add(w.jobs_in_flight.reason);
          eventLoopMax = Math.max(eventLoopMax, w.jobs_in_flight.event_loop_delay_ms);
        }
      }
      samples.push({
        t: Math.round((performance.now() - started) / 100) / 10,
        in_flight: inFlight,
        limit,
        reasons: [...reasons].join("+"),
        rss_mb: rss,
      });
    } catch {
      // A missed sample is a gap in the timeline, not a failure of the run.
    }
  };

  return {
    async start() {
      started = performance.now();
      await sample();
      baseRss = samples.at(-1)?.rss_mb;
      timer = setInterval(() => void sample(), intervalMs);
    },
    stop(): Record<string, number | string> {
      clearInterval(timer);
      if (samples.length === 0) return {};
      const inFlight = samples.map((s) => s.in_flight).sort((a, b) => a - b);
      const median = inFlight[Math.floor(inFlight.length / 2)] ?? 0;
      const last = samples.at(-1) as InFlightSample;
      const peak = samples.reduce((best, s) => (s.in_flight > best.in_flight ? s : best));
      const figures: Record<string, number | string> = {
        in_flight_median: median,
        in_flight_max: peak.in_flight,
        in_flight_limit_last: last.limit,
        in_flight_reason_last: last.reasons,
        heartbeat_gap_max_ms: heartbeatGapMax,
        stall_check_gap_max_ms: stallGapMax,
        stall_check_interval_ms: stallInterval,
        stalled_jobs_requeued: requeued,
        worker_event_loop_delay_p99_max_ms: eventLoopMax,
        worker_rss_max_mib: Math.max(...samples.map((s) => s.rss_mb)),
        // t:in_flight/limit(reason) each sample: the timeline in the report.
        in_flight_timeline: samples.map((s) => `${s.t}s:${s.in_flight}/${s.limit}(${s.reasons})`).join(" "),
      };
      if (baseRss !== undefined && peak.in_flight >= 100)
        figures.rss_mib_per_1000_in_flight = Math.round(((peak.rss_mb - baseRss) / peak.in_flight) * 1000 * 10) / 10;
      return figures;
    },
  };
}
