/**
 * The SSE writer's promises, over real sockets: heartbeats on an idle stream,
 * and a client that reads nothing is dropped at SSE_MAX_BUFFER_BYTES (its
 * last event says SLOW_CLIENT), then cut off after the grace period, while a
 * client that reads gets every event and is never held back.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { createSseStream, formatEvent, type SseStream } from "../../src/api/sse";
import { openSse } from "../../tools/sse-client";

let server: ReturnType<typeof Bun.serve> | undefined;
afterEach(() => {
  server?.stop(true);
  server = undefined;
});

describe("SSE stream", () => {
  test("formats ids, event types and multi-line data as the spec says", () => {
    expect(formatEvent({ id: "1-0", event: "gap", data: "a\nb" })).toBe("id: 1-0\nevent: gap\ndata: a\ndata: b\n\n");
    expect(formatEvent({ data: "{}" })).toBe("data: {}\n\n");
  });

  test("an idle stream gets heartbeat comments", async () => {
    server = Bun.serve({
      port: 0,
      fetch: (request) =>
        createSseStream({ heartbeatMs: 50, maxBufferBytes: 65_536, slowClientGraceMs: 1000, signal: request.signal })
          .response,
    });
    const client = await openSse(`http://127.0.0.1:${server.port}/`);
    const deadline = Date.now() + 5000;
    while (client.comments < 3 && Date.now() < deadline) await Bun.sleep(20);
    expect(client.comments).toBeGreaterThanOrEqual(3);
    client.close();
  });

  test("a client that reads nothing is dropped at the buffer limit; a reading client gets every event", async () => {
    const streams: { stream: SseStream; closed?: string }[] = [];
    server = Bun.serve({
      port: 0,
      idleTimeout: 0,
      fetch(request) {
        const entry: { stream?: SseStream; closed?: string } = {};
        entry.stream = createSseStream({
          heartbeatMs: 60_000,
          maxBufferBytes: 256 * 1024,
          slowClientGraceMs: 500,
          signal: request.signal,
          onClose: (reason) => {
            entry.closed = reason;
          },
        });
        streams.push(entry as { stream: SseStream; closed?: string });
        return entry.stream.response;
      },
    });
    // The slow client: connects, sends its request, and never reads a byte.
    const slow = connect(server.port as number, "127.0.0.1");
    await new Promise<void>((resolve) => slow.once("connect", () => resolve()));
    slow.pause();
    slow.write("GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    const fast = await openSse(`http://127.0.0.1:${server.port}/`);
    while (streams.length < 2) await Bun.sleep(5);
    const [slowEntry, fastEntry] = streams as [{ stream: SseStream; closed?: string }, { stream: SseStream }];

    // 30 MB of events, far beyond what the kernel's socket buffers hold for the slow client, in bursts of
    // 20 KB (a busy tenant's completions), between which the reading client keeps up.
    const payload = "x".repeat(1000);
    const total = 30_000;
    let sent = 0;
    for (let i = 0; i < total; i++) {
      slowEntry.stream.send({ id: `${i}-0`, data: payload });
      if (fastEntry.stream.send({ id: `${i}-0`, data: payload })) sent++;
      if (i % 20 === 0) await Bun.sleep(1);
    }
    expect(slowEntry.closed).toBe("slow_client");
    expect(slowEntry.stream.open).toBe(false);
    expect(sent).toBe(total);
    await fast.waitFor((events) => events.length === total, "every event at the reading client", 20_000);
    // After the grace period the slow client's connection is cut, which frees what was queued for it.
    const ended = new Promise<void>((resolve) => slow.once("close", () => resolve()));
    slow.resume();
    await ended;
    fast.close();
  }, 30_000);
});
