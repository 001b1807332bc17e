/**
 * A tenant's tasks, newest first, in pages, from what Redis already keeps
 * (no index of its own to maintain on the hot path):
 *
 *  1. Unfinished tasks, from the tenant's pending set (`tenant:{t}:pending`,
 *     scored by acceptance): it exists only with API keys and
 *     API_MAX_PENDING_TASKS on, since nothing else records a tenant's queued
 *     tasks outside the queues' own job records.
 *  2. Finished tasks, from the tenant's completion stream (task-events.ts),
 *     newest first (XREVRANGE), while their result still exists: the list
 *     stops at the first completion older than RESULT_TTL_SECONDS, so a
 *     listed task can always be read by its id. The stream keeps the last
 *     EVENTS_STREAM_MAXLEN completions: the list is bounded by both.
 *
 * The cursor is opaque to clients: the phase and the position in it (a
 * score and member of the set, a stream entry id). Each page is read at its
 * own instant: a task that ends between two pages moves from the first phase
 * to the second, and can be seen twice or not at all across them.
 */
import type Redis from "ioredis";
import { AppError } from "../errors";
import { type TaskError, type TaskResult, type TaskStatus, TERMINAL } from "../task/contract";
import { isEventId, type TaskCompletion, tenantEventsKey } from "./task-events";
import { pendingKey, type TaskStore } from "./task-store";

export interface ListedTask {
  /** Where the next page starts when this is the last task of a page. */
  cursor: string;
  task_id: string;
  status: TaskStatus;
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

/** Tasks per page at most. */
export const MAX_PAGE = 100;
/** Entries examined per request at most, however few match the filter: a page may then be short. */
const MAX_SCAN = 1000;

const UNFINISHED: ReadonlySet<TaskStatus> = new Set(["PENDING", "STARTED", "RETRY"]);

type Position = { phase: "unfinished"; score: number; id: string } | { phase: "finished"; id: string };

const encode = (position: Position) =>
  Buffer.from(
    position.phase === "unfinished" ? `u:${position.score}:${position.id}` : `f:${position.id}`,
    "utf8",
  ).toString("base64url");

function decode(cursor: string): Position {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const unfinished = /^u:(\d{1,16}):(.{1,200})$/.exec(text);
  if (unfinished) return { phase: "unfinished", score: Number(unfinished[1]), id: unfinished[2] as string };
  if (text.startsWith("f:") && isEventId(text.slice(2))) return { phase: "finished", id: text.slice(2) };
  throw new AppError("INVALID_CURSOR", "after: not a cursor this list gave; start again without it", {
    status: 422,
    details: { field: "after" },
  });
}

export async function listTenantTasks(
  deps: { redis: Redis; store: Pick<TaskStore, "get">; resultTtlSeconds: number },
  request: {
    tenant: string | undefined;
    /** 1..MAX_PAGE. */
    first: number;
    after?: string | undefined;
    /** Only these statuses; absent: every status. */
    statuses?: ReadonlySet<TaskStatus> | undefined;
    now?: number;
  },
): Promise<TaskPage> {
  const { redis, store } = deps;
  const { tenant, statuses, now = Date.now() } = request;
  const first = Math.min(Math.max(Math.trunc(request.first), 1), MAX_PAGE);
  const position = request.after === undefined ? undefined : decode(request.after);
  const wants = (status: TaskStatus) => !statuses || statuses.has(status);
  const wantsFinished = wants("SUCCESS") || wants("FAILURE");
  const streamKey = tenantEventsKey(tenant);
  const oldest = now - deps.resultTtlSeconds * 1000;
  const tasks: ListedTask[] = [];
  let endCursor: string | undefined;

  /** Whether the stream holds a completion before `end` whose result still exists. */
  const finishedRemain = async (end: string) => {
    if (!wantsFinished) return false;
    const [entry] = (await redis.xrevrange(streamKey, end, "-", "COUNT", 1)) as [string, string[]][];
    return entry !== undefined && (JSON.parse(entry[1][1] ?? "{}") as TaskCompletion).finished_at >= oldest;
  };

  if (tenant !== undefined && position?.phase !== "finished" && [...UNFINISHED].some(wants)) {
    const max = position ? String(position.score) : "+inf";
    const raw = await redis.zrevrangebyscore(pendingKey(tenant), max, "-inf", "WITHSCORES", "LIMIT", 0, MAX_SCAN);
    const members: { id: string; score: number }[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const member = { id: raw[i] as string, score: Number(raw[i + 1]) };
      // Same score as the cursor: members come in reverse lexicographic order; those up to the cursor were listed.
      if (position && member.score === position.score && member.id >= position.id) continue;
      members.push(member);
    }
    for (let start = 0; start < members.length; start += first) {
      const chunk = members.slice(start, start + first);
      const states = await Promise.all(chunk.map(({ id }) => store.get(id, tenant)));
      for (const [i, state] of states.entries()) {
        endCursor = encode({ phase: "unfinished", ...(chunk[i] as { id: string; score: number }) });
        // Gone (its result expired) or just ended: an ended task is listed with the finished ones.
        if (!state || TERMINAL.has(state.status) || !wants(state.status)) continue;
        tasks.push({
          cursor: endCursor,
          task_id: state.task_id,
          status: state.status,
          ...(state.task_type ? { task_type: state.task_type } : {}),
          ...(state.queue ? { queue: state.queue } : {}),
          ...(state.accepted_at ? { accepted_at: state.accepted_at } : {}),
          ...(state.error ? { error: state.error } : {}),
        });
        if (tasks.length === first) {
          const more = start + i + 1 < members.length || raw.length / 2 >= MAX_SCAN || (await finishedRemain("+"));
          return { tasks, hasNextPage: more, endCursor };
        }
      }
    }
  }

  if (!wantsFinished) return { tasks, hasNextPage: false, endCursor };
  let end = position?.phase === "finished" ? `(${position.id}` : "+";
  let scanned = 0;
  for (;;) {
    const count = Math.min(Math.max(first - tasks.length, 50), MAX_SCAN - scanned);
    if (count <= 0) return { tasks, hasNextPage: true, endCursor };
    const page = (await redis.xrevrange(streamKey, end, "-", "COUNT", count)) as [string, string[]][];
    for (const [id, fields] of page) {
      const completion = JSON.parse(fields[1] ?? "{}") as TaskCompletion;
      // Older than the result TTL: its task can no longer be read, nor can anything older.
      if (completion.finished_at < oldest) return { tasks, hasNextPage: false, endCursor };
      scanned++;
      end = `(${id}`;
      endCursor = encode({ phase: "finished", id });
      if (!wants(completion.status)) continue;
      tasks.push({
        cursor: endCursor,
        task_id: completion.task_id,
        status: completion.status,
        ...(completion.task_type ? { task_type: completion.task_type } : {}),
        ...(completion.queue ? { queue: completion.queue } : {}),
        finished_at: completion.finished_at,
        ...(completion.status === "SUCCESS"
          ? { result: completion.result as TaskResult }
          : { error: completion.error as TaskError }),
      });
      if (tasks.length === first) return { tasks, hasNextPage: await finishedRemain(end), endCursor };
    }
    if (page.length < count) return { tasks, hasNextPage: false, endCursor };
  }
}
