/**
 * One Server-Sent Events response, with the two things a long-lived stream
 * needs beyond writing events:
 *
 *  - Heartbeat comments, so that proxies and load balancers that close idle
 *    connections (often after 30 to 60 s) leave a quiet stream open.
 *  - A bound on what a slow client costs. Bun pulls from the response stream
 *    only as fast as the socket drains, so the events of a client that reads
 *    nothing pile up in the stream's queue (measured: 55 MB in 6 s for 1 KB
 *    events at 10,000/s). Past `maxBufferBytes` the client is dropped: it
 *    gets no more events, a last `event: error` naming SLOW_CLIENT, and the
 *    stream closes as soon as that is read; a client that still reads nothing
 *    after `slowClientGraceMs` has its connection aborted, which frees what is
 *    queued. Its followers (event-hub.ts) are closed at the drop, so the other
 *    clients never wait for it.
 */

export interface SseEvent {
  id?: string;
  /** The event type; absent: a plain message (EventSource's `onmessage`). */
  event?: string;
  data: string;
}

export interface SseOptions {
  heartbeatMs: number;
  maxBufferBytes: number;
  slowClientGraceMs: number;
  /** The client's disconnect (the request's signal). */
  signal?: AbortSignal;
  /** How long EventSource waits before it reconnects, ms. */
  retryMs?: number;
  /** Called once when the stream ends for any reason: closed, dropped, or the client gone. */
  onClose?: (reason: "closed" | "slow_client" | "disconnected") => void;
}

export interface SseStream {
  readonly response: Response;
  /** Queues an event; false when the stream is over (or the client was dropped), so the caller stops. */
  send(event: SseEvent): boolean;
  /** Ends the stream after what is queued. */
  close(): void;
  readonly open: boolean;
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  // nginx buffers proxied responses by default, which holds events back.
  "x-accel-buffering": "no",
} as const;

const encoder = new TextEncoder();

export function formatEvent(event: SseEvent): string {
  let text = "";
  if (event.id !== undefined) text += `id: ${event.id}\n`;
  if (event.event !== undefined) text += `event: ${event.event}\n`;
  // A line break would end the field: each line of the data is a data field of its own.
  for (const line of event.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

export function createSseStream(options: SseOptions): SseStream {
  const { heartbeatMs, maxBufferBytes, slowClientGraceMs, signal, retryMs = 2000 } = options;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let state: "open" | "dropping" | "over" = "open";
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let drain: ReturnType<typeof setInterval> | undefined;

  let notified = false;
  const notify = (reason: "closed" | "slow_client" | "disconnected") => {
    if (notified) return;
    notified = true;
    options.onClose?.(reason);
  };
  const end = (reason: "closed" | "disconnected") => {
    if (heartbeat) clearInterval(heartbeat);
    if (drain) clearInterval(drain);
    heartbeat = drain = undefined;
    signal?.removeEventListener("abort", onAbort);
    state = "over";
    notify(reason);
  };
  const onAbort = () => {
    if (state !== "over") end("disconnected");
  };

  const drop = () => {
    state = "dropping";
    notify("slow_client");
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = undefined;
    controller.enqueue(
      encoder.encode(
        formatEvent({
          event: "error",
          data: JSON.stringify({
            code: "SLOW_CLIENT",
            message: `the client read too slowly: over ${maxBufferBytes} bytes of events were waiting; reconnect with Last-Event-ID to resume`,
          }),
        }),
      ),
    );
    const deadline = Date.now() + slowClientGraceMs;
    drain = setInterval(() => {
      const queued = maxBufferBytes - (controller.desiredSize ?? 0);
      if (queued <= 0) {
        end("closed");
        controller.close();
      } else if (Date.now() >= deadline) {
        end("closed");
        // Erroring the stream empties its queue and aborts the response. Without a reason: Bun prints an
        // error's stack for an errored response body, and this is not a fault of the server.
        controller.error();
      }
    }, 250);
  };

  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        controller.enqueue(encoder.encode(`retry: ${retryMs}\n\n`));
        heartbeat = setInterval(() => {
          if (state === "open") write(": ping\n\n");
        }, heartbeatMs);
      },
      cancel() {
        if (state !== "over") end("disconnected");
      },
    },
    { highWaterMark: maxBufferBytes, size: (chunk) => chunk?.byteLength ?? 0 },
  );
  signal?.addEventListener("abort", onAbort, { once: true });

  const write = (text: string): boolean => {
    const bytes = encoder.encode(text);
    if ((controller.desiredSize ?? 0) < bytes.byteLength) {
      drop();
      return false;
    }
    controller.enqueue(bytes);
    return true;
  };

  return {
    response: new Response(body, { headers: SSE_HEADERS }),
    send(event) {
      if (state !== "open") return false;
      return write(formatEvent(event));
    },
    close() {
      if (state !== "open") return;
      end("closed");
      controller.close();
    },
    get open() {
      return state === "open";
    },
  };
}
