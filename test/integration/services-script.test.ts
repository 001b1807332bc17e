/** `bun run services:up` and `services:status` as a user runs them, with the services already started by `bun run test`. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

async function services(command: string) {
  const proc = Bun.spawn(["bun", "scripts/services.ts", command], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code, stdout, stderr };
}

describe("services script", () => {
  test("a second services:up finds both services running and returns within 2 s", async () => {
    const started = performance.now();
    const { code, stdout, stderr } = await services("up");
    const elapsed = performance.now() - started;
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("services ready");
    expect(stdout).not.toContain("downloading");
    expect(elapsed).toBeLessThan(2000);
  });

  test("services:status shows Redis with vector search and Kafka, with their versions and ports", async () => {
    const { code, stdout } = await services("status");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^redis +up +\S+:\d+ +Redis \d+\.\d+\.\d+ +vector search: yes \(search \d+\.\d+\.\d+\)/m);
    expect(stdout).toMatch(/^kafka +up +\S+:\d+ +Kafka \S+ \(KRaft, cluster \S+\)/m);
  });

  test("an unknown command is refused with the usage", async () => {
    const { code, stderr } = await services("restart");
    expect(code).toBe(2);
    expect(stderr).toContain("usage: bun scripts/services.ts <up|down|status>");
  });
});
