/**
 * A lean HTTP/1.1 client for load generation: keep-alive connections on
 * `Bun.connect`, one request in flight per connection, request bytes built
 * once by the caller. fetch() costs a Request/Response/Headers object graph
 * per call and tops out near 10k/s on one core here; this does not (see
 * BENCHMARKS.md, "Harness overhead").
 *
 * A request that finds every connection busy waits in a FIFO queue: in an
 * open-loop run that wait is part of the latency, as it is for a real client.
 *
 * A connection idle for IDLE_CLOSE_MS is closed by the pool, before the
 * server's own keep-alive timeout (Bun.serve: 10 s) can close it under a
 * request just written to it, a race that surfaced as ~90 "reset" tasks in a
 * 60 s run whose connections in use went up and down. HTTP clients do the same
 * (undici's keepAliveTimeout: 4 s).
 */
import { parseResponse } from "./response-parser";

/** Idle connections older than this are closed by the pool (below every common server keep-alive timeout). */
export const IDLE_CLOSE_MS = 4000;

export interface HttpResult {
  status: number;
  body: Uint8Array;
  /** performance.now() when the request's bytes went to the socket (after any wait for a connection). */
  sentAt: number;
}

/** Why a request failed without an HTTP status: the kinds the summary counts. */
export type TransportErrorKind = "connect" | "reset" | "timeout" | "closed";

export class TransportError extends Error {
  constructor(
    readonly kind: TransportErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "TransportError";
  }
}

export interface HttpPool {
  request(bytes: Uint8Array): Promise<HttpResult>;
  /** Connections open or opening. */
  readonly connections: number;
  /** Requests waiting for a connection. */
  readonly queued: number;
  close(): void;
}

export interface HttpPoolOptions {
  /** http://host:port; path and query belong in the request bytes. */
  url: string;
  maxConnections: number;
  /** A request without a complete answer this long after it was sent fails with "timeout". */
  timeoutMs: number;
  now?: () => number;
}

interface Pending {
  bytes: Uint8Array;
  sentAt: number;
  resolve: (result: HttpResult) => void;
  reject: (error: TransportError) => void;
}

interface Connection {
  socket: Bun.Socket<undefined> | undefined;
  current: Pending | undefined;
  buffer: Uint8Array;
  unsent: Uint8Array | undefined;
  dead: boolean;
  /** now() when it last went idle. */
  idleSince: number;
}

/** Builds the bytes of one request; the body is sent as is, with its Content-Length. */
export function buildRequest(
  method: string,
  url: URL,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Uint8Array {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  const payload = body === undefined ? new Uint8Array() : new TextEncoder().encode(body);
  if (body !== undefined) lines.push(`Content-Length: ${payload.byteLength}`);
  const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
  const bytes = new Uint8Array(head.byteLength + payload.byteLength);
  bytes.set(head);
  bytes.set(payload, head.byteLength);
  return bytes;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

export function createHttpPool(options: HttpPoolOptions): HttpPool {
  const { maxConnections, timeoutMs, now = () => performance.now() } = options;
  const target = new URL(options.url);
  const hostname = target.hostname;
  const port = Number(target.port || 80);
  const all = new Set<Connection>();
  const idle: Connection[] = [];
  const queue: Pending[] = [];
  let queueHead = 0;
  let closed = false;

  const takeQueued = (): Pending | undefined => {
    if (queueHead >= queue.length) return undefined;
    const next = queue[queueHead];
    queue[queueHead++] = undefined as unknown as Pending;
    // Compact now and then so a long run does not keep a million-slot array.
    if (queueHead > 4096 && queueHead * 2 > queue.length) {
      queue.splice(0, queueHead);
      queueHead = 0;
    }
    return next;
  };

  const write = (connection: Connection, bytes: Uint8Array) => {
    const socket = connection.socket;
    if (!socket) return;
    const written = socket.write(bytes);
    connection.unsent = written < bytes.byteLength ? bytes.subarray(Math.max(0, written)) : undefined;
  };

  const send = (connection: Connection, pending: Pending) => {
    pending.sentAt = now();
    connection.current = pending;
    write(connection, pending.bytes);
  };

  /** A connection became free: it serves the next queued request or goes idle. */
  const release = (connection: Connection) => {
    connection.current = undefined;
    const next = takeQueued();
    if (next) send(connection, next);
    else {
      connection.idleSince = now();
      idle.push(connection);
    }
  };

  const fail = (connection: Connection, kind: TransportErrorKind, message: string) => {
    if (connection.dead) return;
    connection.dead = true;
    all.delete(connection);
    const at = idle.indexOf(connection);
    if (at >= 0) idle.splice(at, 1);
    const current = connection.current;
    connection.current = undefined;
    current?.reject(new TransportError(kind, message));
    connection.socket?.end();
    if (closed) return;
    // A connection that was never made fails the oldest waiting request, as a client's connect error would:
    // retrying in place would spin on a target that refuses, and no request would ever end.
    if (kind === "connect") takeQueued()?.reject(new TransportError("connect", message));
    // Requests still waiting and not covered by a connection being opened need one more.
    const waiting = queue.length - queueHead;
    if (waiting > opening() && all.size < maxConnections) open();
  };

  const opening = () => {
    let count = 0;
    for (const connection of all) if (!connection.socket) count++;
    return count;
  };

  const open = () => {
    const connection: Connection = {
      socket: undefined,
      current: undefined,
      buffer: new Uint8Array(),
      unsent: undefined,
      dead: false,
      idleSince: 0,
    };
    all.add(connection);
    Bun.connect({
      hostname,
      port,
      socket: {
        open(socket) {
          connection.socket = socket;
          socket.setNoDelay(true);
          if (closed) return void socket.end();
          release(connection);
        },
        data(_socket, chunk) {
          connection.buffer = concat(connection.buffer, chunk);
          const current = connection.current;
          // One request in flight per connection: bytes with none pending mean the stream is out of step.
          if (!current) return fail(connection, "reset", "unexpected bytes with no request pending");
          const parsed = parseResponse(connection.buffer);
          if (parsed === undefined) return;
          if (parsed === "invalid") return fail(connection, "reset", "unparseable HTTP response");
          connection.buffer = connection.buffer.subarray(parsed.consumed);
          current.resolve({ status: parsed.status, body: parsed.body, sentAt: current.sentAt });
          if (parsed.close) return fail(connection, "closed", "server closed the connection");
          release(connection);
        },
        drain(socket) {
          const rest = connection.unsent;
          if (rest) {
            const written = socket.write(rest);
            connection.unsent = written < rest.byteLength ? rest.subarray(Math.max(0, written)) : undefined;
          }
        },
        close() {
          fail(connection, "reset", "connection closed before the answer was complete");
        },
        error(_socket, error) {
          fail(connection, "reset", error.message);
        },
        connectError(_socket, error) {
          fail(connection, "connect", `cannot connect to ${hostname}:${port}: ${error.message}`);
        },
      },
    }).catch((error: unknown) => {
      fail(connection, "connect", `cannot connect to ${hostname}:${port}: ${String(error)}`);
    });
  };

  // One sweep for every request's deadline: a timer per request would cost more than the request at 20k/s.
  const sweep = setInterval(
    () => {
      // Idle connections are a LIFO stack: the longest idle are at its bottom.
      const idleBefore = now() - IDLE_CLOSE_MS;
      let stale = 0;
      while (stale < idle.length && (idle[stale] as Connection).idleSince < idleBefore) stale++;
      for (const connection of idle.splice(0, stale)) {
        connection.dead = true;
        all.delete(connection);
        connection.socket?.end();
      }
      const deadline = now() - timeoutMs;
      for (const connection of all) {
        if (connection.current && connection.current.sentAt < deadline) {
          fail(connection, "timeout", `no complete answer within ${timeoutMs} ms`);
        }
      }
    },
    Math.min(100, timeoutMs),
  );
  sweep.unref();

  return {
    request(bytes) {
      return new Promise<HttpResult>((resolve, reject) => {
        if (closed) return reject(new TransportError("closed", "the pool is closed"));
        const pending: Pending = { bytes, sentAt: 0, resolve, reject };
        const connection = idle.pop();
        if (connection) return send(connection, pending);
        queue.push(pending);
        if (all.size < maxConnections) open();
      });
    },
    get connections() {
      return all.size;
    },
    get queued() {
      return queue.length - queueHead;
    },
    close() {
      closed = true;
      clearInterval(sweep);
      for (let next = takeQueued(); next; next = takeQueued()) {
        next.reject(new TransportError("closed", "the pool closed before the request was sent"));
      }
      for (const connection of [...all]) fail(connection, "closed", "the pool closed");
    },
  };
}
