/** `bun run services:up` and `services:status` as a user runs them, with the services already started by `bun run test`. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

async function services(command: string, env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", "scripts/services.ts", command], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code, stdout, stderr };
}

describe("services script", () => {
  test("a second services:up finds every service running and returns within 2 s", async () => {
    const started = performance.now();
    const { code, stdout, stderr } = await services("up");
    const elapsed = performance.now() - started;
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("services ready");
    expect(stdout).not.toContain("downloading");
    expect(stdout).toMatch(/embeddings multilingual-e5-small-q4 \(384 dims\) on http:\/\/\S+\/v1/);
    expect(elapsed).toBeLessThan(2000);
  });

  test("services:status shows Redis with vector search and Kafka, with their versions and ports", async () => {
    const { code, stdout } = await services("status");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^redis +up +\S+:\d+ +Redis \d+\.\d+\.\d+ +vector search: yes \(search \d+\.\d+\.\d+\)/m);
    expect(stdout).toMatch(/^kafka +up +\S+:\d+ +Kafka \S+ \(KRaft, cluster \S+\)/m);
    expect(stdout).toMatch(/^embeddings +up +\S+:\d+ +multilingual-e5-small-q4 \(384 dims\)/m);
  });

  test("an embedding server that does not answer on another host fails up, naming EMBEDDING_BASE_URL", async () => {
    const { code, stderr } = await services("up", { EMBEDDING_BASE_URL: "http://embeddings.invalid:8090/v1" });
    expect(code).toBe(1);
    expect(stderr).toContain("EMBEDDING_BASE_URL points at http://embeddings.invalid:8090/v1, which does not answer");
  });

  test("a port taken by something else fails up with the model's own error from its log file", async () => {
    // Answers 404 to everything, so the port looks free of an embedding model but the server cannot bind it.
    const squatter = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("no", { status: 404 }) });
    try {
      const url = `http://127.0.0.1:${squatter.port}/v1`;
      const { code, stderr } = await services("up", { EMBEDDING_BASE_URL: url });
      expect(code).toBe(1);
      expect(stderr).toContain(`the embedding model did not answer POST ${url}/embeddings`);
      expect(stderr).toContain("and its process exited");
      expect(stderr).toMatch(
        new RegExp(`Last lines of \\S+embeddings-${squatter.port}\\.log:\\n[^]*Address already in use`),
      );
    } finally {
      squatter.stop(true);
    }
  });

  test("an unknown command is refused with the usage", async () => {
    const { code, stderr } = await services("restart");
    expect(code).toBe(2);
    expect(stderr).toContain("usage: bun scripts/services.ts <up|down|status>");
  });
});
