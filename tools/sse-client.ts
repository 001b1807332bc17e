/**
 * A Server-Sent Events client for tests and the bench: fetch, and a parser of
 * the stream that follows the spec's field rules (id, event, data lines,
 * comments), so callers read exactly what a browser's EventSource would.
 *
 * Bun's fetch runs at most 256 requests at once per process (more wait their
 * turn), so a process that holds more streams open must start with
 * BUN_CONFIG_MAX_HTTP_REQUESTS raised (tools/sse-load.ts does).
 */

export interface ReceivedEvent {
  id?: string;
  event: string;
  data: string;
  /** performance.now() when the event's blank line arrived. */
  at: number;
}

export interface SseConnection {
  status: number;
  response: Response;
  /** Every event so far, in arrival order. */
  readonly events: ReceivedEvent[];
  /** Comment lines (heartbeats) so far. */
  readonly comments: number;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  readonly isEnded: boolean;
  /** The next event after the `index`th, waiting up to timeoutMs. */
  waitFor(predicate: (events: ReceivedEvent[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  const events: ReceivedEvent[] = [];
  let comments = 0;
  let isEnded = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };

  const read = async () => {
    if (!response.body || response.status !== 200) return;
    const decoder = new TextDecoder();
    let buffer = "";
    let current: { id?: string; event?: string; data: string[] } = { data: [] };
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline = buffer.search(/\r\n|\r|\n/);
        while (newline >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
          if (line === "") {
            if (current.data.length > 0) {
              events.push({
                ...(current.id === undefined ? {} : { id: current.id }),
                event: current.event ?? "message",
                data: current.data.join("\n"),
                at: performance.now(),
              });
              notify();
            }
            current = { data: [] };
          } else if (line.startsWith(":")) {
            comments++;
          } else {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") current.data.push(value);
            else if (field === "id") current.id = value;
            else if (field === "event") current.event = value;
          }
          newline = buffer.search(/\r\n|\r|\n/);
        }
      }
    } catch {
      // Closed by the test.
    } finally {
      isEnded = true;
      notify();
    }
  };
  const ended = read();

  return {
    status: response.status,
    response,
    events,
    get comments() {
      return comments;
    },
    ended,
    get isEnded() {
      return isEnded;
    },
    waitFor(predicate, what, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(events)) {
            done();
            resolve();
          } else if (isEnded) {
            done();
            reject(new Error(`the stream ended before ${what}; events: ${JSON.stringify(events.map((e) => e.data))}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events.map((e) => e.data))}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    close() {
      abort.abort();
    },
  };
}

/** The statuses of a task's events, in order. */
export function statusesOf(events: readonly ReceivedEvent[]): string[] {
  return events.filter((e) => e.event === "message").map((e) => (JSON.parse(e.data) as { status: string }).status);
}
