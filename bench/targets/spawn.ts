/** A child process the harness owns: started, awaited until an HTTP URL answers 2xx, stopped with SIGTERM (then SIGKILL). */

export interface Service {
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

export function freePort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port ?? 0;
  server.stop(true);
  return port;
}

export async function spawnService(spec: {
  name: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  /** A URL that answers 2xx once the service is ready. */
  ready: string;
  timeoutMs?: number;
}): Promise<Service> {
  let output = "";
  const proc = Bun.spawn(spec.command, {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output = (output + decoder.decode(chunk)).slice(-20_000);
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  const stop = async () => {
    if (proc.exitCode !== null) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    await proc.exited;
    clearTimeout(timer);
  };
  const deadline = performance.now() + (spec.timeoutMs ?? 30_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${spec.name} exited with ${proc.exitCode}:\n${output}`);
    const status = await fetch(spec.ready)
      .then((r) => r.status)
      .catch(() => 0);
    if (status >= 200 && status < 300) break;
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`${spec.name} did not answer ${spec.ready} in time:\n${output}`);
    }
    await Bun.sleep(100);
  }
  return { pid: proc.pid, output: () => output, stop };
}
