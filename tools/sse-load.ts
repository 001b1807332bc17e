/**
 * Many SSE subscribers against a running app, for the tests and the bench
 * (`bun bench events`). Two modes:
 *
 *   tasks:     submits --count tasks and follows each one on its own
 *              GET /task/:id/events stream; every --reconnect-every'th
 *              subscriber drops its connection after its second event
 *              (STARTED) and comes back with Last-Event-ID. Prints, per task, the events
 *              each connection got, as JSON.
 *   dashboards: holds --count GET /events streams (with --query, e.g.
 *              task_type=classification) open until SIGUSR2 (or
 *              --hold-ms passes), counting the events they get.
 *
 *   bun tools/sse-load.ts tasks --url http://127.0.0.1:8000 --count 1000 --reconnect-every 10
 *
 * Bun's fetch runs at most 256 requests at once per process: this script
 * re-executes itself with BUN_CONFIG_MAX_HTTP_REQUESTS raised when it is not
 * (a parent that signals it should set the variable itself, so that the
 * signal reaches the process that holds the streams).
 */
import { parseArgs } from "node:util";
import { openSse, type SseConnection } from "./sse-client";

export interface TaskTrace {
  task_id: string;
  /** Per connection, the (id, status) of each event it got, in order. */
  connections: { id: string; status: string }[][];
  /** The data of the final event. */
  final: unknown;
  /** ms from POST to the final event. */
  ms: number;
}

export interface TasksReport {
  mode: "tasks";
  count: number;
  elapsed_ms: number;
  tasks: TaskTrace[];
  errors: string[];
}

const REQUIRED_SLOTS = 8192;

async function tasksMode(options: {
  url: string;
  count: number;
  reconnectEvery: number;
  headers: Record<string, string>;
  concurrency: number;
}): Promise<TasksReport> {
  const { url, count, reconnectEvery, headers } = options;
  const started = performance.now();
  const errors: string[] = [];
  const follow = async (index: number): Promise<TaskTrace | undefined> => {
    const posted = performance.now();
    const response = await fetch(`${url}/process`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ text: `subscriber ${index} follows its task`, use_cache: false }),
    });
    if (response.status !== 202) {
      errors.push(`POST /process answered ${response.status}: ${await response.text()}`);
      return undefined;
    }
    const { task_id } = (await response.json()) as { task_id: string };
    const connections: { id: string; status: string }[][] = [];
    const read = (connection: SseConnection) =>
      connection.events.map((e) => ({ id: e.id ?? "", status: (JSON.parse(e.data) as { status: string }).status }));
    let first = await openSse(`${url}/task/${task_id}/events`, headers);
    if (reconnectEvery > 0 && index % reconnectEvery === 0) {
      // Away in mid-stream, after STARTED, and back with the last id it read.
      await first.waitFor((events) => events.length >= 2, "two events", 30_000);
      first.close();
      await first.ended;
      connections.push(read(first).slice(0, 2));
      const lastId = first.events[1]?.id ?? "";
      first = await openSse(`${url}/task/${task_id}/events`, { ...headers, "last-event-id": lastId });
    }
    await first.ended;
    connections.push(read(first));
    const last = first.events.at(-1);
    return { task_id, connections, final: last ? JSON.parse(last.data) : undefined, ms: performance.now() - posted };
  };
  const tasks: TaskTrace[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      try {
        const trace = await follow(index);
        if (trace) tasks.push(trace);
      } catch (error) {
        errors.push(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, count) }, worker));
  return { mode: "tasks", count, elapsed_ms: performance.now() - started, tasks, errors };
}

async function dashboardsMode(options: {
  url: string;
  count: number;
  holdMs: number;
  query: string | undefined;
  headers: Record<string, string>;
}): Promise<{ mode: "dashboards"; count: number; opened: number; events: number; errors: string[] }> {
  const errors: string[] = [];
  const connections = (
    await Promise.all(
      Array.from({ length: options.count }, () =>
        openSse(`${options.url}/events${options.query ? `?${options.query}` : ""}`, options.headers).catch(
          (error: unknown) => {
            errors.push(String(error));
            return undefined;
          },
        ),
      ),
    )
  ).filter((c): c is SseConnection => c !== undefined && c.status === 200);
  // Ready: the parent starts its load now, and sends SIGUSR2 (or SIGINT) when it is done. The handlers
  // come first: a signal sent the moment "ready" is read would otherwise meet the default action (exit).
  const released = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.holdMs);
    for (const signal of ["SIGUSR2", "SIGINT"] as const)
      process.once(signal, () => {
        clearTimeout(timer);
        resolve();
      });
  });
  console.error(`ready ${connections.length}`);
  await released;
  const events = connections.reduce((sum, c) => sum + c.events.length, 0);
  for (const c of connections) c.close();
  return { mode: "dashboards", count: options.count, opened: connections.length, events, errors };
}

if (import.meta.main) {
  if (Number(process.env.BUN_CONFIG_MAX_HTTP_REQUESTS ?? 0) < REQUIRED_SLOTS) {
    const child = Bun.spawn([process.execPath, ...process.argv.slice(1)], {
      env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: String(REQUIRED_SLOTS) },
      stdio: ["inherit", "inherit", "inherit"],
    });
    process.exit(await child.exited);
  }
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: "string", default: "http://127.0.0.1:8000" },
      count: { type: "string", default: "100" },
      "reconnect-every": { type: "string", default: "0" },
      concurrency: { type: "string", default: "2000" },
      "hold-ms": { type: "string", default: "600000" },
      key: { type: "string" },
      query: { type: "string" },
    },
  });
  const headers: Record<string, string> = values.key ? { authorization: `Bearer ${values.key}` } : {};
  const mode = positionals[0];
  const report =
    mode === "tasks"
      ? await tasksMode({
          url: values.url,
          count: Number(values.count),
          reconnectEvery: Number(values["reconnect-every"]),
          headers,
          concurrency: Number(values.concurrency),
        })
      : mode === "dashboards"
        ? await dashboardsMode({
            url: values.url,
            count: Number(values.count),
            holdMs: Number(values["hold-ms"]),
            query: values.query,
            headers,
          })
        : undefined;
  if (!report) {
    console.error(
      "usage: bun tools/sse-load.ts tasks|dashboards --url <base> --count N [--reconnect-every K] [--query Q] [--key K]",
    );
    process.exit(2);
  }
  console.log(JSON.stringify(report));
}
