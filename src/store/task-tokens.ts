/**
 * The answer of a streamed task (`"stream": true`), token by token, for GET
 * /task/:id/stream (issue 15 §2): a Redis Stream `tokens:task:{id}` that the
 * worker appends to as the provider sends text, and that API processes
 * follow through the event hub, exactly as the task's state changes
 * (task-events.ts: same append-and-publish Lua, same channel prefix), so a
 * client that reconnects with Last-Event-ID resumes after the last token it
 * got, in any API process.
 *
 * Entries (the JSON of field `e`):
 *   {"text":"..."}           a piece of the answer
 *   {"reset":N}              what came before is void: attempt N starts over (at each attempt's start, and
 *                            when a retry inside the call restarts the answer). A reset also trims the
 *                            entries before it, so the stream holds one attempt: its size is bounded by
 *                            max_tokens, not by the number of retries.
 *   {"end":true}             the task's end is recorded: readers take the result from the task
 *
 * The stream lives RESULT_TTL_SECONDS from its last reset or its end, like
 * the task's result.
 *
 * Cost per token: one EVALSHA (XADD, PUBLISH), not awaited one by one:
 * ioredis writes commands in order on one connection, so the appends of a
 * task are pipelined and reach Redis in order. Pieces that arrive in the same
 * turn of the event loop (one network read of the provider's stream) go in
 * one entry; pieces that arrive apart (a model writes a token every few ms)
 * each get theirs, so a client sees the answer as it is written. Before the
 * result is recorded every append is awaited (`complete`), so the stream is
 * whole when the task's end is announced, and a failed append is repaired:
 * a reset and the whole answer in one piece, never a paid answer lost.
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { defineScript } from "../redis/script";
import { APPEND_EVENT_LUA, channelPrefix } from "./task-events";

export function taskTokensKey(taskId: string): string {
  return `tokens:task:${taskId}`;
}

/**
 * Entries kept, about: one attempt's pieces (at most max_tokens, 4,000, when
 * each is a token; fewer when pieces are coalesced) and those of one retry
 * inside the call, with room to spare. Older entries are trimmed at each reset anyway.
 */
export const TOKEN_STREAM_MAXLEN = 20_000;

/*
 * KEYS[1] tokens:task:{task_id}
 * ARGV[1] channel prefix   ARGV[2] entries kept   ARGV[3] the entry (JSON)   ARGV[4] ttl seconds, "" to keep it
 * ARGV[5] "1": trim the entries before this one (a reset)
 * Returns the entry's id.
 */
const APPEND = defineScript<string>(
  "taskTokenAppend",
  `${APPEND_EVENT_LUA}
local ttl = false
if ARGV[4] ~= "" then ttl = ARGV[4] end
local id = append_event(ARGV[1], KEYS[1], ARGV[2], ARGV[3], ttl)
if ARGV[5] == "1" then redis.call("XTRIM", KEYS[1], "MINID", id) end
return id
`,
);

/** The pieces of an entry, as a reader sees them. */
export type TokenEntry = { kind: "text"; text: string } | { kind: "reset"; attempt: number } | { kind: "end" };

/** Token entries are written `{"text":...}` first: readers tell them apart without parsing them. */
const TEXT_PREFIX = '{"text":';

export function isTextEntry(json: string): boolean {
  return json.startsWith(TEXT_PREFIX);
}

export function parseTokenEntry(json: string): TokenEntry | undefined {
  const value = JSON.parse(json) as { text?: unknown; reset?: unknown; end?: unknown };
  if (typeof value.text === "string") return { kind: "text", text: value.text };
  if (typeof value.reset === "number") return { kind: "reset", attempt: value.reset };
  if (value.end === true) return { kind: "end" };
  return undefined;
}

/** One attempt's writer: pieces and resets go out as they come; `complete` makes the stream whole. */
export interface TokenWriter {
  /** A piece of the answer; coalesced with the others of this turn of the event loop. */
  token(text: string): void;
  /** What came before is void (a retry inside the call restarts the answer). */
  reset(): void;
  /**
   * Waits for every append, then makes sure the stream holds exactly `response`
   * since its last reset: a cache hit, or an answer that was not streamed, goes
   * as one piece; a stream that an append failure left incomplete is redone.
   * Throws when Redis cannot take even that (the attempt is then retried).
   */
  complete(response: string): Promise<void>;
  /** The attempt failed: what is queued is waited for (errors only logged), and nothing more is appended. */
  abandon(): Promise<void>;
}

export interface TokenLog {
  /** The writer of one attempt; it appends the attempt's reset at once. */
  open(taskId: string, attempt: number, logger: Logger): TokenWriter;
  /** Appends the end (after the task's end is recorded), awaited. */
  end(taskId: string): Promise<void>;
}

export function createTokenLog(deps: { redis: Redis; ttlSeconds: number }): TokenLog {
  const { redis, ttlSeconds } = deps;
  const prefix = channelPrefix(redis);
  const append = (key: string, json: string, renew: boolean, trim: boolean) =>
    APPEND.run(redis, [key], [prefix, TOKEN_STREAM_MAXLEN, json, renew ? ttlSeconds : "", trim ? "1" : "0"]);

  return {
    open(taskId, attempt, logger) {
      const key = taskTokensKey(taskId);
      const inflight: Promise<unknown>[] = [];
      let failure: unknown;
      let failures = 0;
      let pending = "";
      let scheduled = false;
      let closed = false;
      // The text appended since the last reset, as the stream will hold it once every append is done.
      let written = "";

      const send = (json: string, renew = false, trim = false) => {
        inflight.push(
          append(key, json, renew, trim).catch((error: unknown) => {
            failures++;
            failure ??= error;
          }),
        );
      };
      const flush = () => {
        scheduled = false;
        if (pending === "" || closed) return;
        send(JSON.stringify({ text: pending }));
        pending = "";
      };
      const reset = () => {
        pending = "";
        written = "";
        send(JSON.stringify({ reset: attempt }), true, true);
      };
      /** Waits for the appends so far; the first error since the last wait, if any. */
      const drain = async (): Promise<unknown> => {
        flush();
        while (inflight.length > 0) await Promise.all(inflight.splice(0));
        const error = failure;
        failure = undefined;
        return error;
      };

      reset();
      return {
        token(text) {
          if (closed || text === "") return;
          pending += text;
          written += text;
          if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
        },
        reset() {
          if (!closed) reset();
        },
        async complete(response) {
          const error = await drain();
          if (error === undefined && written === response) return;
          if (error !== undefined) {
            logger.warn(
              { failed_appends: failures, error: errorMessage(error) },
              "token stream: appends failed; sending the answer again in one piece",
            );
          }
          // Nothing since the reset (a cache hit, an answer not streamed): one piece; else the stream starts over.
          if (written !== "" || error !== undefined) reset();
          send(JSON.stringify({ text: response }));
          written = response;
          const again = await drain();
          if (again !== undefined) throw again;
        },
        async abandon() {
          const error = await drain();
          closed = true;
          if (error !== undefined) logger.warn({ error: errorMessage(error) }, "token stream: appends failed");
        },
      };
    },
    async end(taskId) {
      await append(taskTokensKey(taskId), '{"end":true}', true, false);
    },
  };
}
