/**
 * Follows event streams (task-events.ts) for the push channels of one API
 * process: SSE, WebSocket and GraphQL subscriptions all read through it.
 *
 * One subscriber connection per process, whatever the number of clients: a
 * channel is subscribed while at least one local client follows it. A client
 * is caught up from the stream (XRANGE after its Last-Event-ID), then fed the
 * entries published as they are appended. Entries published while it catches
 * up are held and de-duplicated by id, so nothing is lost or repeated at the
 * seam; after the subscriber connection drops and comes back, every client is
 * caught up again from the last id it got, since pub/sub does not replay.
 *
 * A follower may name a `route` (a field and the values it wants): the hub
 * then hands it only the live entries whose field has one of those values,
 * found by a map lookup. Without routes, 1,000 dashboards of one tenant that
 * each want one task type cost 1,000 calls per completion of any type: at
 * 5,000 completions a second the API's event loop did nothing else, and POST
 * /process starved (measured: `bun bench events`, BENCHMARKS.md).
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { channelPrefix, compareEventIds } from "./task-events";

export interface EventEntry {
  /** The stream entry id, `{ms}-{seq}`: what a client sends back as Last-Event-ID. */
  id: string;
  /** The event's JSON, as written. */
  json: string;
}

/** The parsed JSON of an entry, once per entry however many clients follow it. */
const parsed = new WeakMap<EventEntry, Record<string, unknown>>();
export function dataOf(entry: EventEntry): Record<string, unknown> {
  let value = parsed.get(entry);
  if (!value) {
    value = JSON.parse(entry.json) as Record<string, unknown>;
    parsed.set(entry, value);
  }
  return value;
}

export interface FollowOptions {
  /**
   * Only live entries whose `field` is one of `values` (catching up still reads every entry: filter in
   * onEntry too). What makes many narrow followers of one busy stream cheap.
   */
  route?: { field: string; values: ReadonlySet<string> };
  /** Deliver only entries after this id; absent: every entry the stream still holds; `$`: only new ones. */
  after?: string;
  onEntry(entry: EventEntry): void;
  /** The client has been caught up: what follows is live. Called once. */
  onLive?(): void;
  /** Entries after `after` were trimmed from the stream before this client came back: it missed some. */
  onGap?(): void;
  /** Reading the stream failed; the follow is closed. */
  onError?(error: unknown): void;
}

export interface Follow {
  close(): void;
}

export interface EventHub {
  follow(key: string, options: FollowOptions): Follow;
  /** Clients followed right now, for tests and metrics. */
  readonly size: number;
  close(): Promise<void>;
}

/** Entries read per XRANGE while catching up. */
const PAGE = 500;
/** Entries held for one client while it catches up; past it, they are re-read from the stream instead. */
const MAX_HELD = 10_000;

interface Follower {
  key: string;
  lastId: string | undefined;
  options: FollowOptions;
  live: boolean;
  held: EventEntry[];
  overflowed: boolean;
  closed: boolean;
  wentLive: boolean;
}

export async function createEventHub(deps: { redis: Redis; logger: Logger }): Promise<EventHub> {
  const { redis, logger } = deps;
  const subscriber = redis.duplicate();
  // Catching clients up reads streams in pages: on a connection of its own, so that a crowd reconnecting
  // never queues the API's own commands (the enqueue of POST /process) behind its replies.
  const reader = redis.duplicate();
  reader.on("error", (error) => logger.warn({ error: errorMessage(error) }, "event hub reader connection error"));
  const prefix = channelPrefix(redis);
  interface Channel {
    followers: Set<Follower>;
    /** Followers without a route: every entry. */
    unrouted: Set<Follower>;
    /** field → value → followers that route on it. */
    routes: Map<string, Map<string, Set<Follower>>>;
    subscribed: Promise<unknown>;
  }
  const channels = new Map<string, Channel>();
  let size = 0;
  let connectedOnce = false;

  const deliver = (follower: Follower, entry: EventEntry) => {
    if (follower.closed) return;
    if (follower.lastId !== undefined && compareEventIds(entry.id, follower.lastId) <= 0) return;
    follower.lastId = entry.id;
    follower.options.onEntry(entry);
  };

  const catchUp = async (follower: Follower) => {
    follower.live = false;
    // "Only new ones": nothing to read back. Subscribed already, so what is appended from now on arrives
    // published. Reading from the end instead made 1,000 dashboards that connected while 1,300 completions a
    // second flowed each read every completion since, through the connection POST /process uses (measured:
    // 1 s per POST for several seconds, `bun bench events`).
    const fromEnd = follower.lastId === "$";
    if (fromEnd) {
      const last = (await reader.xrevrange(follower.key, "+", "-", "COUNT", 1)) as [string, string[]][];
      follower.lastId = last[0]?.[0] ?? "0-0";
    }
    const gapCheck = !fromEnd && follower.lastId !== undefined && follower.options.onGap !== undefined;
    for (let round = 0; !follower.closed; round++) {
      follower.overflowed = false;
      if (round === 0 && gapCheck) {
        // Redis 7 keeps the highest id trimmed from a stream: above the client's last id, it missed something.
        const info = (await reader.call("XINFO", "STREAM", follower.key).catch(() => undefined)) as
          | unknown[]
          | undefined;
        const at = info?.indexOf("max-deleted-entry-id") ?? -1;
        const maxDeleted = at >= 0 ? String(info?.[at + 1]) : "0-0";
        if (compareEventIds(maxDeleted, follower.lastId as string) > 0) follower.options.onGap?.();
      }
      for (; !fromEnd; ) {
        const start = follower.lastId === undefined ? "-" : `(${follower.lastId}`;
        const page = (await reader.xrange(follower.key, start, "+", "COUNT", PAGE)) as [string, string[]][];
        for (const [id, fields] of page) deliver(follower, { id, json: fields[1] ?? "{}" });
        if (page.length < PAGE || follower.closed) break;
      }
      // Entries published while reading: delivered in order, those already read skipped by id.
      const held = follower.held;
      follower.held = [];
      if (follower.overflowed) continue;
      for (const entry of held) deliver(follower, entry);
      follower.live = true;
      if (!follower.wentLive && !follower.closed) {
        follower.wentLive = true;
        follower.options.onLive?.();
      }
      return;
    }
  };

  const start = (follower: Follower) => {
    catchUp(follower).catch((error: unknown) => {
      if (follower.closed) return;
      logger.warn({ stream: follower.key, error: errorMessage(error) }, "could not read an event stream");
      stop(follower);
      follower.options.onError?.(error);
    });
  };

  const stop = (follower: Follower) => {
    if (follower.closed) return;
    follower.closed = true;
    size--;
    const channel = channels.get(follower.key);
    if (!channel) return;
    channel.followers.delete(follower);
    channel.unrouted.delete(follower);
    const route = follower.options.route;
    if (route) {
      const byValue = channel.routes.get(route.field);
      for (const value of route.values) {
        const set = byValue?.get(value);
        set?.delete(follower);
        if (set?.size === 0) byValue?.delete(value);
      }
      if (byValue?.size === 0) channel.routes.delete(route.field);
    }
    if (channel.followers.size === 0) {
      channels.delete(follower.key);
      subscriber.unsubscribe(prefix + follower.key).catch(() => {});
    }
  };

  subscriber.on("message", (name: string, message: string) => {
    const channel = channels.get(name.slice(prefix.length));
    if (!channel) return;
    const space = message.indexOf(" ");
    if (space < 0) return;
    const entry = { id: message.slice(0, space), json: message.slice(space + 1) };
    const offer = (follower: Follower) => {
      if (follower.live) deliver(follower, entry);
      else if (follower.held.length < MAX_HELD) follower.held.push(entry);
      else follower.overflowed = true;
    };
    for (const follower of channel.unrouted) offer(follower);
    if (channel.routes.size === 0) return;
    let data: Record<string, unknown>;
    try {
      data = dataOf(entry);
    } catch {
      logger.warn({ stream: name }, "an event that is not JSON was published; routed followers skip it");
      return;
    }
    for (const [field, byValue] of channel.routes) {
      const followers = byValue.get(String(data[field]));
      if (followers) for (const follower of followers) offer(follower);
    }
  });
  subscriber.on("error", (error) => logger.warn({ error: errorMessage(error) }, "event hub connection error"));
  subscriber.on("ready", () => {
    // ioredis subscribes its channels again after a reconnection; what was published meanwhile is read back.
    if (!connectedOnce) {
      connectedOnce = true;
      return;
    }
    for (const channel of channels.values()) for (const follower of channel.followers) start(follower);
  });
  await new Promise<void>((resolve, reject) => {
    if (subscriber.status === "ready") resolve();
    subscriber.once("ready", () => resolve());
    subscriber.once("end", () => reject(new Error("the event hub could not connect to Redis")));
  });

  return {
    follow(key, options) {
      const follower: Follower = {
        key,
        lastId: options.after,
        options,
        live: false,
        held: [],
        overflowed: false,
        closed: false,
        wentLive: false,
      };
      size++;
      let channel = channels.get(key);
      if (!channel) {
        channel = {
          followers: new Set(),
          unrouted: new Set(),
          routes: new Map(),
          subscribed: subscriber.subscribe(prefix + key),
        };
        channels.set(key, channel);
      }
      channel.followers.add(follower);
      if (options.route) {
        const byValue = channel.routes.get(options.route.field) ?? new Map<string, Set<Follower>>();
        channel.routes.set(options.route.field, byValue);
        for (const value of options.route.values) {
          const set = byValue.get(value) ?? new Set<Follower>();
          byValue.set(value, set);
          set.add(follower);
        }
      } else {
        channel.unrouted.add(follower);
      }
      // Subscribed before reading: an entry appended between the read and the subscription would be lost.
      channel.subscribed.then(
        () => start(follower),
        (error: unknown) => {
          stop(follower);
          options.onError?.(error);
        },
      );
      return { close: () => stop(follower) };
    },
    get size() {
      return size;
    },
    async close() {
      for (const channel of [...channels.values()]) for (const follower of [...channel.followers]) stop(follower);
      await subscriber.quit().catch(() => subscriber.disconnect());
      await reader.quit().catch(() => reader.disconnect());
    },
  };
}
