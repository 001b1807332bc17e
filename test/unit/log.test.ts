import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { createLogger, lazyChild } from "../../src/log";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, destination };
}

describe("log", () => {
  test("a lazy child writes its bindings like a child, and is made only when a line is written", () => {
    const { lines, destination } = capture();
    const parent = createLogger({ destination, level: "warn" });
    let made = 0;
    const child = parent.child.bind(parent);
    parent.child = ((bindings: Record<string, unknown>) => {
      made++;
      return child(bindings);
    }) as typeof parent.child;
    const log = lazyChild(parent, { task_id: "t-9", queue: "default" });
    log.info({ n: 1 }, "below the level");
    log.debug("below the level");
    expect(made).toBe(0);
    expect(lines).toEqual([]);
    log.warn({ token: "secret-333" }, "written");
    log.error("written too");
    expect(made).toBe(1);
    expect(lines.map((line) => JSON.parse(line))).toMatchObject([
      { level: "warn", task_id: "t-9", queue: "default", token: "[REDACTED]", msg: "written" },
      { level: "error", task_id: "t-9", msg: "written too" },
    ]);
  });

  test("secrets are redacted wherever a log call carries them", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination, level: "debug" }).child({ component: "api" });
    logger.info({ headers: { authorization: "Bearer tenant-key-123" } }, "request");
    logger.info({ req: { headers: { authorization: "Bearer tenant-key-456" } } }, "request");
    logger.warn({ config: { apiKey: "sk-live-789" } }, "config");
    logger.error({ OPENAI_API_KEY: "sk-env-000", API_KEYS: "acme:k-111" }, "env");
    logger.info({ options: { password: "redis-pass-222" } }, "client");
    const output = lines.join("");
    for (const secret of ["tenant-key-123", "tenant-key-456", "sk-live-789", "sk-env-000", "k-111", "redis-pass-222"]) {
      expect(output).not.toContain(secret);
    }
    expect(output.match(/\[REDACTED\]/g)?.length).toBe(6);
  });

  test("component loggers write structured JSON with their context", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination }).child({ component: "worker", queue: "ai_processing" });
    logger.info({ task_id: "t-1" }, "job done");
    const line = JSON.parse(lines[0] ?? "{}");
    expect(line).toMatchObject({
      level: "info",
      component: "worker",
      queue: "ai_processing",
      task_id: "t-1",
      msg: "job done",
    });
    expect(typeof line.time).toBe("string");
  });
});
