import { describe, expect, test } from "bun:test";
import diagnostics from "node:diagnostics_channel";
import { polyfillTracingHasSubscribers } from "../../src/redis/tracing-channel";

describe("TracingChannel#hasSubscribers", () => {
  test("is false while nobody listens and true once one of its channels has a subscriber, as on Node", () => {
    polyfillTracingHasSubscribers();
    const channel = diagnostics.tracingChannel("ai-eventstream:test-trace") as unknown as {
      hasSubscribers: boolean;
      subscribe(handlers: object): void;
      unsubscribe(handlers: object): void;
    };
    expect(channel.hasSubscribers).toBe(false);
    const handlers = { asyncEnd() {} };
    channel.subscribe(handlers);
    expect(channel.hasSubscribers).toBe(true);
    channel.unsubscribe(handlers);
    expect(channel.hasSubscribers).toBe(false);
  });

  test("ioredis skips its tracing when nobody listens (it checks hasSubscribers === false)", async () => {
    await import("../../src/redis/client");
    const channel = diagnostics.tracingChannel("ioredis:command") as unknown as { hasSubscribers: unknown };
    expect(channel.hasSubscribers).toBe(false);
  });
});
