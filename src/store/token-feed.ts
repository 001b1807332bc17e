/**
 * What GET /task/:id/stream sends, transport-agnostic like task-feed.ts: the
 * answer of one task as its worker receives it (task-tokens.ts), then the
 * task exactly as GET /task/:id shows it, and the feed ends.
 *
 *  - `token` {"text"}: a piece of the answer; the pieces since the last
 *    `reset` join into the result's `response`.
 *  - `reset` {"attempt"}: drop the text so far: an attempt (or a retry inside
 *    the provider call) starts the answer over.
 *  - `end`: the task (`{task_id, status, result?, error?}`), last.
 *
 * A streamed task's stream ends with an end entry, written after the result.
 * A task that was not streamed (`stream: false`, or run by a worker without
 * a token log) has no stream: its answer goes as one `token` when it ends.
 * Should a streamed task's end entry never come (its worker died between
 * recording the result and appending it), the task's own end, seen on its
 * event stream, ends the feed after END_GRACE_MS, with the answer sent again
 * whole when what this client got cannot be shown to be it.
 *
 * Ids are the token stream's, so Last-Event-ID resumes after the last piece
 * a client got; a client sent back further than the stream holds (trimmed at
 * each attempt's start) starts again at the current attempt's reset.
 */
import type Redis from "ioredis";
import { type TaskStatus, TERMINAL, taskView } from "../task/contract";
import type { EventEntry, EventHub, Follow } from "./event-hub";
import { compareEventIds, taskEventsKey } from "./task-events";
import { FINAL_EVENT_ID } from "./task-feed";
import type { TaskState, TaskStore } from "./task-store";
import { isTextEntry, parseTokenEntry, taskTokensKey } from "./task-tokens";

export type TokenEventType = "token" | "reset" | "end";

export interface TokenFeedEvent {
  /** Absent for an event made here (an answer sent again whole) rather than read from the stream. */
  id?: string;
  type: TokenEventType;
  /** The event's data, as JSON: a token's is the stream entry itself, passed on unparsed. */
  json: string;
}

export interface TokenFeedSink {
  event(event: TokenFeedEvent): void;
  /** The stream could not be read; the feed is over. */
  error(error: unknown): void;
}

export interface TokenFeed {
  close(): void;
}

/** The id of the one piece of an answer that was not streamed: below every id Redis gives. */
export const WHOLE_ANSWER_ID = "0-1";

/** How long after a streamed task's end its stream's end entry may lag before the task itself ends the feed. */
export const END_GRACE_MS = 3000;

export interface TokenFeedDeps {
  hub: EventHub;
  store: Pick<TaskStore, "get">;
  redis: Redis;
  endGraceMs?: number;
}

const isEndEntry = (json: string) => !isTextEntry(json) && parseTokenEntry(json)?.kind === "end";

export async function followTokens(
  deps: TokenFeedDeps,
  request: { taskId: string; tenant: string | undefined; after: string | undefined },
  sink: TokenFeedSink,
): Promise<TokenFeed | "not_found" | "ended"> {
  const { hub, store, redis, endGraceMs = END_GRACE_MS } = deps;
  const { taskId, tenant, after } = request;
  const key = taskTokensKey(taskId);
  const initial = await store.get(taskId, tenant);
  if (!initial) return "not_found";
  const over = TERMINAL.has(initial.status);
  if (after !== undefined && over) {
    if (compareEventIds(after, FINAL_EVENT_ID) >= 0) return "ended";
    const last = (await redis.xrevrange(key, "+", "-", "COUNT", 1)) as [string, string[]][];
    const [lastId, fields] = last[0] ?? [];
    if (lastId === after && isEndEntry(fields?.[1] ?? "{}")) return "ended";
  }

  let ended = false;
  let tokens: Follow | undefined;
  let events: Follow | undefined;
  let grace: ReturnType<typeof setTimeout> | undefined;
  let tokensLive = false;
  let taskOver = over;
  // What this client got since the last reset; `complete`: it saw that reset, so the text is the whole attempt's.
  let text = "";
  let complete = false;

  const stop = () => {
    ended = true;
    tokens?.close();
    events?.close();
    if (grace) clearTimeout(grace);
  };

  const fail = (error: unknown) => {
    if (ended) return;
    stop();
    sink.error(error);
  };

  const sendWhole = (response: string, id?: string) =>
    sink.event({ ...(id ? { id } : {}), type: "token", json: JSON.stringify({ text: response }) });

  /** The final event, once the task's state is read; before it, the answer again whole if the client may lack it. */
  const finish = async (id: string, resend: (state: TaskState) => void) => {
    if (ended) return;
    stop();
    try {
      const state = (await store.get(taskId, tenant)) ?? initial;
      resend(state);
      sink.event({ id, type: "end", json: JSON.stringify(taskView(state)) });
    } catch (error) {
      sink.error(error);
    }
  };

  /** The stream's end entry: the worker made the stream whole before it; checked when this client can tell. */
  const finishAtEnd = (id: string) =>
    finish(id, (state) => {
      const response = state.result?.response;
      if (response === undefined || !complete || text === response) return;
      sink.event({ type: "reset", json: "{}" });
      sendWhole(response);
    });

  /** No stream: the answer as one piece (unless this client has it already), then the task. */
  const finishWhole = () =>
    finish(FINAL_EVENT_ID, (state) => {
      const response = state.result?.response;
      if (response === undefined) return;
      if (after !== undefined && compareEventIds(after, WHOLE_ANSWER_ID) >= 0) return;
      sendWhole(response, WHOLE_ANSWER_ID);
    });

  /** A streamed task over without its end entry: ended from the task, the answer again whole unless shown complete. */
  const finishFromTask = () =>
    finish(FINAL_EVENT_ID, (state) => {
      const response = state.result?.response;
      if (response === undefined || (complete && text === response)) return;
      sink.event({ type: "reset", json: "{}" });
      sendWhole(response);
    });

  /** The task is over: a stream means its end entry is coming (or late); none means it was not streamed. */
  const onTaskOver = async () => {
    taskOver = true;
    if (ended) return;
    const streamed = (await redis.exists(key)) === 1;
    if (ended) return;
    if (!streamed) {
      void finishWhole();
      return;
    }
    armGrace();
  };

  const armGrace = () => {
    if (ended || grace || !taskOver || !tokensLive) return;
    grace = setTimeout(() => void finishFromTask(), endGraceMs);
  };

  const onToken = (entry: EventEntry) => {
    if (ended) return;
    if (isTextEntry(entry.json)) {
      text += (JSON.parse(entry.json) as { text: string }).text;
      sink.event({ id: entry.id, type: "token", json: entry.json });
      return;
    }
    const parsed = parseTokenEntry(entry.json);
    if (parsed?.kind === "reset") {
      text = "";
      complete = true;
      sink.event({ id: entry.id, type: "reset", json: JSON.stringify({ attempt: parsed.attempt }) });
    } else if (parsed?.kind === "end") {
      void finishAtEnd(entry.id);
    }
  };

  const followTokensFrom = (from: string | undefined) => {
    tokens = hub.follow(key, {
      ...(from === undefined ? {} : { after: from }),
      onEntry: onToken,
      onLive() {
        tokensLive = true;
        armGrace();
      },
      onGap() {
        // Trimmed since this client's last id: the attempt it was reading was replaced. Start at the current one.
        tokens?.close();
        tokensLive = false;
        followTokensFrom(undefined);
      },
      onError: fail,
    });
  };

  if (over && (await redis.exists(key)) === 0) {
    // Over, and never streamed: nothing to follow.
    await finishWhole();
    return { close: stop };
  }
  followTokensFrom(after);
  if (!over) {
    events = hub.follow(taskEventsKey(taskId), {
      onEntry(entry) {
        const status = (JSON.parse(entry.json) as { status?: TaskStatus }).status;
        if (status && TERMINAL.has(status) && !taskOver) onTaskOver().catch(fail);
      },
      onError: fail,
    });
  }
  return { close: stop };
}
