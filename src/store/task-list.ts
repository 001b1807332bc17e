/**
 * Tasks, newest first, in pages, from what Redis already keeps (no index of
 * its own to maintain on the hot path), for one namespace or several merged
 * (an admin's console lists every tenant's):
 *
 *  1. Unfinished tasks, from each tenant's pending set (`tenant:{t}:pending`,
 *     scored by acceptance): it exists only with API keys and
 *     API_MAX_PENDING_TASKS on, since nothing else records a tenant's queued
 *     tasks outside the queues' own job records.
 *  2. Finished tasks, from each namespace's completion stream
 *     (task-events.ts), newest first (XREVRANGE), while their result still
 *     exists: a stream stops at its first completion older than
 *     RESULT_TTL_SECONDS, so a listed task can always be read by its id. A
 *     stream keeps the last EVENTS_STREAM_MAXLEN completions: the list is
 *     bounded by both.
 *
 * Several namespaces are merged in one order: unfinished by (acceptance,
 * task id) descending, finished by (stream entry id descending, tenant
 * ascending); entry ids are the Redis server's clock, so one order spans
 * every stream of a deployment. The cursor is opaque to clients: the phase
 * and the position in that order. Each page is read at its own instant: a
 * task that ends between two pages moves from the first phase to the
 * second, and can be seen twice or not at all across them.
 */
import type Redis from "ioredis";
import { AppError } from "../errors";
import { type TaskError, type TaskResult, type TaskStatus, TERMINAL } from "../task/contract";
import { compareEventIds, isEventId, type TaskCompletion, tenantEventsKey } from "./task-events";
import { pendingKey, type TaskStore } from "./task-store";

export interface ListedTask {
  /** Where the next page starts when this is the last task of a page. */
  cursor: string;
  task_id: string;
  status: TaskStatus;
  /** The namespace it was listed from; absent for the open one (no API key). */
  tenant?: string;
  task_type?: string;
  queue?: string;
  accepted_at?: number;
  finished_at?: number;
  result?: TaskResult;
  error?: TaskError;
}

export interface TaskPage {
  tasks: ListedTask[];
  /** More tasks may follow: ask again with `after: endCursor`. */
  hasNextPage: boolean;
  endCursor: string | undefined;
}

/** Only tasks that match every set given; an absent set matches all. */
export interface TaskFilter {
  statuses?: ReadonlySet<TaskStatus> | undefined;
  taskTypes?: ReadonlySet<string> | undefined;
  queues?: ReadonlySet<string> | undefined;
}

/** Tasks per page at most. */
export const MAX_PAGE = 100;
/** Entries examined per request at most, however few match the filter: a page may then be short. */
const MAX_SCAN = 1000;

const UNFINISHED: ReadonlySet<TaskStatus> = new Set(["PENDING", "STARTED", "RETRY"]);

type Position =
  | { phase: "unfinished"; score: number; id: string }
  | { phase: "finished"; id: string; tenant: string | undefined };

const encode = (position: Position) =>
  Buffer.from(
    position.phase === "unfinished"
      ? `u:${position.score}:${position.id}`
      : `f:${position.id}${position.tenant === undefined ? "" : `:${position.tenant}`}`,
    "utf8",
  ).toString("base64url");

function decode(cursor: string, field: string): Position {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const unfinished = /^u:(\d{1,16}):(.{1,200})$/.exec(text);
  if (unfinished) return { phase: "unfinished", score: Number(unfinished[1]), id: unfinished[2] as string };
  const finished = /^f:(\d{1,16}-\d{1,16})(?::(.{1,200}))?$/.exec(text);
  if (finished && isEventId(finished[1] as string)) {
    return { phase: "finished", id: finished[1] as string, tenant: finished[2] };
  }
  throw new AppError("INVALID_CURSOR", `${field}: not a cursor this list gave; start again without it`, {
    status: 422,
    details: { field },
  });
}

/** Tenants in the finished phase's tie order: the open namespace first, then by name. */
const tenantOrder = (a: string | undefined, b: string | undefined) =>
  a === b ? 0 : a === undefined ? -1 : b === undefined ? 1 : a < b ? -1 : 1;

const matches = (filter: TaskFilter, task: { status: TaskStatus; task_type?: string; queue?: string }) =>
  (!filter.statuses || filter.statuses.has(task.status)) &&
  (!filter.taskTypes || filter.taskTypes.has(task.task_type ?? "")) &&
  (!filter.queues || filter.queues.has(task.queue ?? ""));

/** One namespace's completion stream, read newest first in pages, while its completions are within the TTL. */
interface StreamReader {
  tenant: string | undefined;
  key: string;
  /** The XREVRANGE end of the next read. */
  end: string;
  buffer: { id: string; completion: TaskCompletion }[];
  done: boolean;
}

export async function listTasks(
  deps: { redis: Redis; store: Pick<TaskStore, "get">; resultTtlSeconds: number },
  request: {
    /** The namespaces to list, merged: a tenant's name, or undefined for the open one (no API key). */
    tenants: readonly (string | undefined)[];
    /** 1..MAX_PAGE. */
    first: number;
    after?: string | undefined;
    filter?: TaskFilter;
    /** The parameter that carried `after`, named in the error of a bad cursor. */
    cursorField?: string;
    now?: number;
  },
): Promise<TaskPage> {
  const { redis, store } = deps;
  const { filter = {}, now = Date.now() } = request;
  const tenants = [...new Set(request.tenants)].sort(tenantOrder);
  const first = Math.min(Math.max(Math.trunc(request.first), 1), MAX_PAGE);
  const position = request.after === undefined ? undefined : decode(request.after, request.cursorField ?? "after");
  const statuses = filter.statuses;
  const wants = (status: TaskStatus) => !statuses || statuses.has(status);
  const wantsFinished = wants("SUCCESS") || wants("FAILURE");
  const oldest = now - deps.resultTtlSeconds * 1000;
  const tasks: ListedTask[] = [];
  let endCursor: string | undefined;

  const readers: StreamReader[] = tenants.map((tenant) => {
    let end = "+";
    if (position?.phase === "finished") {
      // The cursor's own entry was listed, and so were its id's entries of the tenants before it.
      end = tenantOrder(tenant, position.tenant) > 0 ? position.id : `(${position.id}`;
    }
    return { tenant, key: tenantEventsKey(tenant), end, buffer: [], done: false };
  });

  /** Reads the next `count` completions of a stream into its buffer; those past the TTL end it. */
  const refill = async (reader: StreamReader, count: number) => {
    const page = (await redis.xrevrange(reader.key, reader.end, "-", "COUNT", count)) as [string, string[]][];
    for (const [id, fields] of page) {
      const completion = JSON.parse(fields[1] ?? "{}") as TaskCompletion;
      // Older than the result TTL: its task can no longer be read, nor can anything older.
      if (completion.finished_at < oldest) {
        reader.done = true;
        return;
      }
      reader.buffer.push({ id, completion });
      reader.end = `(${id}`;
    }
    if (page.length < count) reader.done = true;
  };

  /** Whether any stream holds a completion after the listed ones whose result still exists. */
  const finishedRemain = async () => {
    if (!wantsFinished) return false;
    if (readers.some((reader) => reader.buffer.length > 0)) return true;
    const open = readers.filter((reader) => !reader.done);
    await Promise.all(open.map((reader) => refill(reader, 1)));
    return open.some((reader) => reader.buffer.length > 0);
  };

  const pending = tenants.filter((tenant): tenant is string => tenant !== undefined);
  if (pending.length > 0 && position?.phase !== "finished" && [...UNFINISHED].some(wants)) {
    const max = position ? String(position.score) : "+inf";
    const raws = await Promise.all(
      pending.map((tenant) =>
        redis.zrevrangebyscore(pendingKey(tenant), max, "-inf", "WITHSCORES", "LIMIT", 0, MAX_SCAN),
      ),
    );
    const members: { id: string; score: number; tenant: string }[] = [];
    for (const [t, raw] of raws.entries()) {
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const member = { id: raw[i] as string, score: Number(raw[i + 1]), tenant: pending[t] as string };
        // Same score as the cursor: members come in reverse order of id; those up to the cursor were listed.
        if (position && member.score === position.score && member.id >= position.id) continue;
        members.push(member);
      }
    }
    members.sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const truncated = raws.some((raw) => raw.length / 2 >= MAX_SCAN);
    for (let start = 0; start < members.length; start += first) {
      const chunk = members.slice(start, start + first);
      const states = await Promise.all(chunk.map(({ id, tenant }) => store.get(id, tenant)));
      for (const [i, state] of states.entries()) {
        const member = chunk[i] as (typeof members)[number];
        endCursor = encode({ phase: "unfinished", score: member.score, id: member.id });
        // Gone (its result expired) or just ended: an ended task is listed with the finished ones.
        if (!state || TERMINAL.has(state.status) || !matches(filter, state)) continue;
        tasks.push({
          cursor: endCursor,
          task_id: state.task_id,
          status: state.status,
          tenant: member.tenant,
          ...(state.task_type ? { task_type: state.task_type } : {}),
          ...(state.queue ? { queue: state.queue } : {}),
          ...(state.accepted_at ? { accepted_at: state.accepted_at } : {}),
          ...(state.error ? { error: state.error } : {}),
        });
        if (tasks.length === first) {
          const more = start + i + 1 < members.length || truncated || (await finishedRemain());
          return { tasks, hasNextPage: more, endCursor };
        }
      }
    }
  }

  if (!wantsFinished) return { tasks, hasNextPage: false, endCursor };
  let scanned = 0;
  for (;;) {
    const count = Math.min(Math.max(first - tasks.length, 50), MAX_SCAN - scanned);
    if (count <= 0) return { tasks, hasNextPage: true, endCursor };
    await Promise.all(
      readers.filter((reader) => reader.buffer.length === 0 && !reader.done).map((reader) => refill(reader, count)),
    );
    // Every stream with entries left has some in its buffer: the newest head is the next in the merged order.
    let next: StreamReader | undefined;
    for (const reader of readers) {
      const head = reader.buffer[0];
      if (!head) continue;
      const best = next?.buffer[0];
      if (!best || compareEventIds(head.id, best.id) > 0) next = reader;
    }
    if (!next) return { tasks, hasNextPage: false, endCursor };
    const { id, completion } = next.buffer.shift() as StreamReader["buffer"][number];
    scanned++;
    endCursor = encode({ phase: "finished", id, tenant: next.tenant });
    if (!matches(filter, completion)) continue;
    tasks.push({
      cursor: endCursor,
      task_id: completion.task_id,
      status: completion.status,
      ...(next.tenant === undefined ? {} : { tenant: next.tenant }),
      ...(completion.task_type ? { task_type: completion.task_type } : {}),
      ...(completion.queue ? { queue: completion.queue } : {}),
      finished_at: completion.finished_at,
      ...(completion.status === "SUCCESS"
        ? { result: completion.result as TaskResult }
        : { error: completion.error as TaskError }),
    });
    if (tasks.length === first) return { tasks, hasNextPage: await finishedRemain(), endCursor };
  }
}
