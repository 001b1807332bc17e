/**
 * Shared pieces of the local-services script: where things live, running a
 * command, starting a detached process with a pid file, stopping only what we
 * started, and waiting for a condition with a deadline.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..", "..");
/**
 * Runtime data (databases, logs, pid files): inside the clone, ignored by git.
 * AI_EVENTSTREAM_SERVICES_DIR points at another clone's, so a worktree can
 * see (status) and stop/start (the broker-outage test) the services another
 * checkout started.
 */
export const RUNTIME_DIR = process.env.AI_EVENTSTREAM_SERVICES_DIR ?? join(ROOT, ".services");
/**
 * Downloads: outside the clone, so a fresh clone on the same machine provisions
 * without the network. AI_EVENTSTREAM_CACHE overrides it.
 */
export const CACHE_DIR =
  process.env.AI_EVENTSTREAM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "ai-eventstream");

export class ServiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServiceError";
  }
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/**
 * Fills `dir` in the download cache once. `fill` writes into a staging folder
 * beside it, which is renamed into place with a `.complete` marker at the end:
 * a second caller (another worktree's run) never uses a half-filled folder,
 * and an interrupted install leaves nothing that looks complete. A folder
 * without the marker is a leftover and is replaced.
 */
export async function installOnce(dir: string, fill: (staging: string) => Promise<void>): Promise<string> {
  const marker = join(dir, ".complete");
  if (existsSync(marker)) return dir;
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  ensureDir(staging);
  try {
    await fill(staging);
    writeFileSync(join(staging, ".complete"), `${new Date().toISOString()}\n`);
    if (!existsSync(marker)) rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // Another caller finished first: its folder is as good as ours.
    if (!existsSync(marker)) throw error;
  }
  return dir;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its output; never throws on a non-zero exit. */
export async function run(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  try {
    const proc = Bun.spawn(cmd, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, stdout, stderr };
  } catch (error) {
    return { code: 127, stdout: "", stderr: error instanceof Error ? error.message : String(error) };
  }
}

/** The last few lines of a command's output, for an error message. */
export function tail(text: string, lines = 12): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

/** The last lines of a log file, or a note that it is empty or missing. */
export function logTail(path: string, lines = 8): string {
  const text = existsSync(path) ? readFileSync(path, "utf8") : "";
  return text.trim() === "" ? "(empty)" : tail(text, lines);
}

export function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/**
 * The pid recorded in pidFile when that process is alive and is ours: its
 * command line contains `marker` (a path under .services/ of this clone), so
 * a recycled pid of an unrelated process is never mistaken for our service.
 */
export function ownedPid(pidFile: string, marker: string): number | undefined {
  const pid = readPid(pidFile);
  if (pid === undefined || !isAlive(pid)) return undefined;
  return commandLine(pid).includes(marker) ? pid : undefined;
}

/** Starts a long-running process detached from this one, output to logFile, pid to pidFile. */
export function startDetached(
  cmd: string,
  args: string[],
  options: { cwd: string; logFile: string; pidFile: string },
): number {
  const out = openSync(options.logFile, "a");
  const child = spawn(cmd, args, { cwd: options.cwd, detached: true, stdio: ["ignore", out, out] });
  if (child.pid === undefined) throw new ServiceError(`could not start ${cmd}`);
  child.unref();
  writeFileSync(options.pidFile, `${child.pid}\n`);
  return child.pid;
}

/** Stops the process recorded in pidFile if it is ours: SIGTERM, then SIGKILL after the grace period. */
export async function stopOwned(pidFile: string, marker: string, graceMs: number): Promise<"stopped" | "not running"> {
  const pid = ownedPid(pidFile, marker);
  if (pid === undefined) {
    rmSync(pidFile, { force: true });
    return "not running";
  }
  process.kill(pid, "SIGTERM");
  const gone = await waitUntil(() => !isAlive(pid), graceMs, 100);
  if (!gone) {
    process.kill(pid, "SIGKILL");
    await waitUntil(() => !isAlive(pid), 5000, 50);
  }
  rmSync(pidFile, { force: true });
  return "stopped";
}

/** Polls `check` until it returns true or the deadline passes; returns whether it succeeded. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // not ready yet
    }
    if (Date.now() >= deadline) return false;
    await Bun.sleep(intervalMs);
  }
}

/**
 * Polls a just-started service until it answers or the process started for it
 * exits (isAlive, not ownedPid: right after the fork the child's command line
 * is still ours). Returns the last status and whether the process exited, for
 * an error message that says which.
 */
export async function waitForStart<S extends { running: boolean }>(
  status: () => Promise<S>,
  pid: number,
  timeoutMs: number,
  intervalMs: number,
): Promise<{ last: S | undefined; exited: boolean }> {
  let last: S | undefined;
  let exited = false;
  await waitUntil(
    async () => {
      last = await status();
      exited = !last.running && !isAlive(pid);
      return last.running || exited;
    },
    timeoutMs,
    intervalMs,
  );
  return { last, exited };
}

/** True for addresses this machine serves itself, the only ones `up` may start a service for. */
export function isLocalHost(host: string): boolean {
  return ["127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"].includes(host);
}
