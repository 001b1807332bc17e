/**
 * The loop that sends webhooks, one per worker process (issue 15 §4). It
 * claims due deliveries from Redis (delivery-store.ts), at most `concurrency`
 * in flight, and for each attempt:
 *
 *   1. skips it as `gone` when its URL answered 410 to the tenant before;
 *   2. resolves the host again and checks every address (DNS answers change
 *      between acceptance and delivery); for http it then connects to the
 *      checked address itself (Host header kept), so a second DNS answer
 *      cannot send it elsewhere; https resolves again inside fetch, a window
 *      SECURITY.md describes;
 *   3. POSTs the stored body, signed for this attempt, without following
 *      redirects, within `timeoutMs`;
 *   4. records the outcome: 2xx delivered; 410 gone (no more webhooks to that
 *      URL for the tenant); anything else (3xx, 4xx, 5xx, timeout, network
 *      error, refused address) retried after an exponential backoff with
 *      jitter, until `maxAttempts`, then failed.
 *
 * A delivery is at least once: a deliverer killed after the receiver answered
 * but before the record sends it again once the claim's lease lapses, with
 * the same `webhook-id`, which receivers use to drop duplicates.
 */
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { retryDelay, sleep } from "../util/backoff";
import { CallbackUrlRefused, type Lookup, loggableUrl, resolveCallback, systemLookup } from "./callback-url";
import type { Claim, DeliveryAttempt, DeliveryState, DeliveryStore } from "./delivery-store";
import { signedHeaders } from "./signing";

/** How often an idle deliverer looks for due deliveries. */
const POLL_MS = 200;

export interface DelivererOptions {
  store: DeliveryStore;
  /** The signing secret of a tenant ("" when auth is off). */
  secretOf: (tenant: string) => string;
  allowPrivate: boolean;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  concurrency: number;
  logger: Logger;
  /** Where each attempt's outcome is announced (`webhook.attempt`), for /metrics. */
  bus?: EventBus;
  userAgent: string;
  lookup?: Lookup;
  fetch?: typeof fetch;
  pollMs?: number;
}

export interface Deliverer {
  start(): void;
  /** Stops claiming, lets attempts in flight finish for up to graceMs, then aborts the rest and gives them back. */
  stop(graceMs: number): Promise<void>;
  stats(): { in_flight: number; delivered: number; retried: number; failed: number; gone: number };
}

/** The URL fetch connects to: for http the checked address itself, so DNS is not asked a second time. */
function target(url: URL, address: string): { href: string; host?: string } {
  if (url.protocol !== "http:") return { href: url.href };
  const pinned = new URL(url.href);
  pinned.hostname = address.includes(":") ? `[${address}]` : address;
  return { href: pinned.href, host: url.host };
}

export function createDeliverer(options: DelivererOptions): Deliverer {
  const { store, secretOf, logger, maxAttempts, concurrency, timeoutMs } = options;
  const lookup = options.lookup ?? systemLookup;
  const fetchImpl = options.fetch ?? fetch;
  const pollMs = options.pollMs ?? POLL_MS;
  // Longer than anything one attempt can take (DNS, the request), so a live deliverer never loses its claim.
  const leaseMs = timeoutMs * 2 + 10_000;
  const inFlight = new Set<Promise<void>>();
  const shutdown = new AbortController();
  const counts = { delivered: 0, retried: 0, failed: 0, gone: 0 };
  let stopping = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let lastClaimError = 0;

  const attempt = async (claim: Claim) => {
    const { delivery } = claim;
    const n = delivery.attempts + 1;
    const log = logger.child({
      task_id: delivery.task_id,
      webhook_id: delivery.id,
      attempt: n,
      url: loggableUrl(delivery.url),
    });
    if (await store.isGone(delivery.tenant, delivery.url)) {
      await store.record(claim, undefined, "gone");
      counts.gone++;
      options.bus?.emit("webhook.attempt", { state: "gone", ms: 0 });
      log.info("webhook skipped: its URL answered 410 Gone before");
      return;
    }
    const at = Date.now();
    const started = performance.now();
    let status: number | undefined;
    let error: string | undefined;
    try {
      const { url, addresses } = await resolveCallback(delivery.url, { allowPrivate: options.allowPrivate }, lookup);
      const to = target(url, addresses[0] as string);
      const timestamp = Math.floor(Date.now() / 1000);
      const response = await fetchImpl(to.href, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": options.userAgent,
          ...(to.host ? { host: to.host } : {}),
          ...signedHeaders(secretOf(delivery.tenant), delivery.id, timestamp, delivery.body),
        },
        body: delivery.body,
        redirect: "manual",
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), shutdown.signal]),
      });
      status = response.status;
      await response.body?.cancel().catch(() => {});
    } catch (thrown) {
      if (shutdown.signal.aborted) {
        await store.release(claim).catch(() => {});
        log.info("webhook attempt cut by shutdown; given back, due at once");
        return;
      }
      error =
        thrown instanceof CallbackUrlRefused
          ? thrown.message
          : (thrown as Error).name === "TimeoutError"
            ? `no response within ${timeoutMs} ms`
            : errorMessage(thrown);
    }
    const durationMs = Math.round(performance.now() - started);
    const state: Exclude<DeliveryState, "pending"> =
      status !== undefined && status >= 200 && status < 300
        ? "delivered"
        : status === 410
          ? "gone"
          : n >= maxAttempts
            ? "failed"
            : "retrying";
    const nextAttemptAt =
      state === "retrying" ? Date.now() + retryDelay(n, options.retryBaseMs, options.retryMaxMs) : undefined;
    const record: DeliveryAttempt = {
      n,
      at: new Date(at).toISOString(),
      ...(status === undefined ? {} : { status_code: status }),
      ...(error === undefined ? {} : { error }),
      duration_ms: durationMs,
      state,
      ...(nextAttemptAt === undefined ? {} : { next_attempt_at: new Date(nextAttemptAt).toISOString() }),
    };
    const applied = await store.record(claim, record, state, nextAttemptAt === undefined ? {} : { nextAttemptAt });
    const context = { status_code: status, error, duration_ms: durationMs, next_attempt_at: record.next_attempt_at };
    if (!applied) log.warn(context, "webhook attempt recorded after its claim lapsed to another deliverer");
    options.bus?.emit("webhook.attempt", { state, ms: durationMs });
    if (state === "delivered") {
      counts.delivered++;
      log.info(context, "webhook delivered");
    } else if (state === "gone") {
      counts.gone++;
      log.warn(context, "webhook receiver answered 410 Gone: no more webhooks to this URL for the tenant");
    } else if (state === "failed") {
      counts.failed++;
      log.error({ ...context, max_attempts: maxAttempts }, "webhook failed for good: attempts exhausted");
    } else {
      counts.retried++;
      log.warn(context, "webhook attempt failed; retrying");
    }
  };

  const launch = (claim: Claim) => {
    const running: Promise<void> = attempt(claim)
      .catch((error: unknown) =>
        // Redis away while recording: the claim's lease lapses and the delivery is tried again.
        logger.warn(
          { task_id: claim.delivery.task_id, webhook_id: claim.delivery.id, error: errorMessage(error) },
          "webhook attempt could not be recorded; it will be retried after its lease",
        ),
      )
      .finally(() => {
        inFlight.delete(running);
        wake?.();
      });
    inFlight.add(running);
  };

  /** Resolves after pollMs, or sooner when a slot frees or the deliverer stops. */
  const idle = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, pollMs);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const run = async () => {
    while (!stopping) {
      const free = concurrency - inFlight.size;
      if (free > 0) {
        try {
          const claims = await store.claim(Date.now(), leaseMs, free);
          for (const claim of claims) launch(claim);
          // A full claim may leave more due: ask again at once.
          if (claims.length === free && claims.length > 0) continue;
        } catch (error) {
          if (Date.now() - lastClaimError > 10_000) {
            lastClaimError = Date.now();
            logger.warn({ error: errorMessage(error) }, "could not claim due webhooks; trying again");
          }
        }
      }
      if (!stopping) await idle();
    }
  };

  return {
    start() {
      loop ??= run();
    },
    async stop(graceMs) {
      stopping = true;
      wake?.();
      await loop;
      if (inFlight.size > 0) {
        const all = Promise.allSettled([...inFlight]);
        await Promise.race([all, sleep(graceMs)]);
        shutdown.abort(new Error("shutting down"));
        await all;
      }
    },
    stats: () => ({ in_flight: inFlight.size, ...counts }),
  };
}
