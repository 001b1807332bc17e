/**
 * The HTTP API fuzzed from its own OpenAPI document by schemathesis (every
 * check: no 5xx, responses match the documented schemas and statuses, valid
 * requests accepted, invalid ones refused, 405 for undeclared methods, auth
 * not ignored), with API keys on, against the real app and Redis. Bounded:
 * a fixed number of examples per operation, deterministic generation.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureSchemathesis } from "../../scripts/tools/schemathesis";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { deleteByPrefix, dropIndexesByPrefix, requireRedis, testConfig, uniquePrefix } from "../helpers/services";

const ROOT = join(import.meta.dir, "..", "..");
const KEY = `fuzz-${crypto.randomUUID()}`;
const cachePrefix = uniquePrefix("fuzz-cache");
let app: AppProcess;
let st: string;

beforeAll(async () => {
  st = await ensureSchemathesis((line) => console.log(line));
  app = await startApp({
    REDIS_URL: await isolatedRedisUrl(1),
    CACHE_REDIS_URL: testConfig.redisUrl,
    CACHE_PREFIX: cachePrefix,
    LLM_PROVIDER: "simulated",
    SIMULATED_LATENCY_MS: "1",
    API_KEYS: `fuzzer:${KEY}`,
    API_ADMINS: "fuzzer",
  });
}, 180_000);

afterAll(async () => {
  await app?.stop();
  const redis = await requireRedis();
  await dropIndexesByPrefix(redis, cachePrefix);
  await deleteByPrefix(redis, cachePrefix);
  await redis.quit();
});

test("schemathesis finds no 5xx and no response outside the documented contract", async () => {
  const proc = Bun.spawn(
    [
      st,
      "run",
      `${app.url}/swagger/json`,
      "--checks",
      "all",
      "--max-examples",
      "40",
      "--generation-deterministic",
      "--workers",
      "2",
      "--header",
      `Authorization: Bearer ${KEY}`,
      // The coverage phase of schemathesis 4.32.5 crashes inside hypothesis (KeyError in
      // get_pretty_function_description) on header parameters; fuzzing and stateful cover the contract.
      "--phases",
      "examples,fuzzing,stateful",
      // GET /events is a dashboard's feed: it never ends, and schemathesis reads a text/event-stream body to its
      // end. Its query parameters' 422s are tested in test/integration/task-events.test.ts; the streams that do
      // end (GET /task/{id}/events, /task/{id}/stream) stay in.
      "--exclude-name",
      "GET /events",
      // GET /metrics/stream pushes a snapshot every second for as long as the client stays: it never ends either.
      // It takes no parameters; its admin rule and token are tested in test/integration/dashboard.test.ts.
      "--exclude-name",
      "GET /metrics/stream",
      "--no-color",
    ],
    // Its own working directory: schemathesis keeps a .schemathesis/ cache where it runs.
    {
      stdout: "pipe",
      stderr: "pipe",
      cwd: tmpdir(),
      env: { ...process.env, SCHEMATHESIS_HOOKS: "schemathesis_hooks", PYTHONPATH: join(ROOT, "scripts", "tools") },
    },
  );
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  // Its closing line ("==== 1 warning in 10.40s ====") is pytest's format with no test count: a CI that reads
  // the log takes it for a run that executed nothing. The summary is printed without it.
  const summary = out
    .slice(out.lastIndexOf("SUMMARY"))
    .split("\n")
    .filter((line) => !/^=+ .* =+$/.test(line.trim()));
  console.log(`schemathesis:\n${summary.join("\n").trim()}`);
  expect(code, `${out.slice(-4000)}\n${err}`).toBe(0);
  expect(out).toMatch(/\d+ generated, \d+ passed/);
  expect(app.output()).not.toContain(KEY);
}, 240_000);
