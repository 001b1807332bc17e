import { describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { consoleGuard, isLoopback } from "../../src/api/auth";
import { createLogger } from "../../src/log";

const logger = createLogger({ level: "silent" });

function app(options: { keysOn?: boolean; allowRemote?: boolean; address: string | undefined }) {
  return new Elysia()
    .use(
      consoleGuard({
        keysOn: options.keysOn ?? false,
        allowRemote: options.allowRemote ?? false,
        addressOf: () => options.address,
        logger,
      }),
    )
    .get("/dashboard", () => "page")
    .get("/admin/control", () => "state")
    .get("/fine-tunes", () => "fine-tunes")
    .get("/fine-tunes/:id", () => "fine-tune")
    .get("/fine-tunesque", () => "not an operator route")
    .get("/metrics", () => "metrics");
}

const status = async (server: ReturnType<typeof app>, path: string) =>
  (await server.handle(new Request(`http://host${path}`))).status;

describe("the operator console without API keys", () => {
  test("answers clients on this host, IPv4, IPv6 and IPv4-mapped", async () => {
    for (const address of ["127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1"]) {
      expect(isLoopback(address)).toBe(true);
      expect(await status(app({ address }), "/dashboard")).toBe(200);
      expect(await status(app({ address }), "/admin/control")).toBe(200);
      expect(await status(app({ address }), "/fine-tunes")).toBe(200);
    }
  });

  test("refuses other hosts with a 403 that says how to open it, and leaves other routes alone", async () => {
    for (const address of ["10.0.0.5", "192.168.1.20", "::ffff:10.0.0.5", "fe80::1", "128.0.0.1"]) {
      expect(isLoopback(address)).toBe(false);
      const server = app({ address });
      const response = await server.handle(new Request("http://host/admin/control"));
      expect(response.status).toBe(403);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("FORBIDDEN");
      expect(body.error.message).toContain("CONSOLE_ALLOW_REMOTE");
      expect(await status(server, "/dashboard")).toBe(403);
      // Fine-tunes train on every tenant's tasks: operators only, like /admin/*.
      expect(await status(server, "/fine-tunes")).toBe(403);
      expect(await status(server, "/fine-tunes/ft-1")).toBe(403);
      expect(await status(server, "/fine-tunesque")).toBe(200);
      expect(await status(server, "/metrics")).toBe(200);
    }
  });

  test("CONSOLE_ALLOW_REMOTE opens it to other hosts; with API keys the keys decide", async () => {
    expect(await status(app({ address: "10.0.0.5", allowRemote: true }), "/admin/control")).toBe(200);
    expect(await status(app({ address: "10.0.0.5", keysOn: true }), "/admin/control")).toBe(200);
  });
});
