/**
 * The supervisor of worker processes, with real child processes: one that
 * never says it is ready is killed at the ready timeout, never left running
 * beside the ones that serve (issue 13 §8).
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log";
import { createSupervisor } from "../../src/queue/supervisor";

const dir = mkdtempSync(join(tmpdir(), "supervisor-"));
const pidsFile = join(dir, "pids");
afterAll(() => {
  // Whatever the outcome, no fixture process outlives the test.
  const pids = existsSync(pidsFile) ? readFileSync(pidsFile, "utf8").trim().split("\n").map(Number) : [];
  for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("a worker process not ready within the timeout is killed, and start() says why", async () => {
  const supervisor = createSupervisor({
    count: 1,
    entry: join(import.meta.dir, "fixtures", "never-ready-worker.ts"),
    env: { PIDS_FILE: pidsFile },
    logger: createLogger({ level: "silent" }),
    drainTimeoutMs: 1000,
    readyTimeoutMs: 1500,
  });
  await expect(supervisor.start()).rejects.toThrow("not ready within 1500 ms");
  const [pid] = readFileSync(pidsFile, "utf8").trim().split("\n").map(Number);
  expect(pid).toBeGreaterThan(0);
  const deadline = Date.now() + 3000;
  while (alive(pid as number) && Date.now() < deadline) await Bun.sleep(50);
  expect(alive(pid as number)).toBe(false);
  await supervisor.stop(2000);
}, 15_000);
