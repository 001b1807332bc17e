/**
 * CPU and RSS of a process tree (the system under test with its worker
 * processes, or the load generator itself), read from /proc once a second.
 * CPU is in % of one core, so 150 % means one and a half of the two cores.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface ResourceSummary {
  /** Mean CPU over the sampled window, % of one core. */
  cpuPercent: number;
  peakCpuPercent: number;
  /** Largest RSS seen, MiB (the tree's sum). */
  peakRssMiB: number;
  processes: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux; /proc/<pid>/stat counts in these

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** pid and every descendant, from /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const tid of tasks) {
      for (const child of (read(`/proc/${p}/task/${tid}/children`) ?? "").split(" ").filter(Boolean))
        visit(Number(child));
    }
  };
  visit(pid);
  return out;
}

/** Total CPU seconds (user + system) and RSS (MiB) of a tree; undefined when the root is gone. */
export function readTree(
  pid: number,
  withChildren = true,
): { cpuSeconds: number; rssMiB: number; processes: number } | undefined {
  if (read(`/proc/${pid}/stat`) === undefined) return undefined;
  let ticks = 0;
  let rssKiB = 0;
  const pids = withChildren ? processTree(pid) : [pid];
  for (const p of pids) {
    const stat = read(`/proc/${p}/stat`);
    if (stat) {
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    const match = /VmRSS:\s+(\d+)/.exec(read(`/proc/${p}/status`) ?? "");
    if (match) rssKiB += Number(match[1]);
  }
  return { cpuSeconds: ticks / CLOCK_TICKS, rssMiB: rssKiB / 1024, processes: pids.length };
}

export interface ResourceSampler {
  /** Starts the window (call when the measured phase begins). */
  start(): void;
  sample(): void;
  summary(): ResourceSummary | undefined;
}

/**
 * `withChildren: false` for the generator itself: the app or server it
 * started are its children, and their CPU belongs to the target's figure.
 */
export function createResourceSampler(
  pid: number,
  { withChildren = true, now = () => performance.now() }: { withChildren?: boolean; now?: () => number } = {},
): ResourceSampler {
  let first: { at: number; cpu: number } | undefined;
  let last: { at: number; cpu: number } | undefined;
  let peakCpu = 0;
  let peakRss = 0;
  let processes = 0;
  const sample = () => {
    const tree = readTree(pid, withChildren);
    if (!tree) return;
    const at = now();
    if (last && at - last.at > 200)
      peakCpu = Math.max(peakCpu, ((tree.cpuSeconds - last.cpu) / ((at - last.at) / 1000)) * 100);
    last = { at, cpu: tree.cpuSeconds };
    first ??= last;
    peakRss = Math.max(peakRss, tree.rssMiB);
    processes = Math.max(processes, tree.processes);
  };
  return {
    start() {
      first = undefined;
      last = undefined;
      sample();
    },
    sample,
    summary() {
      sample();
      if (!first || !last || last.at <= first.at) return undefined;
      const cpuPercent = ((last.cpu - first.cpu) / ((last.at - first.at) / 1000)) * 100;
      const round = (n: number) => Math.round(n * 10) / 10;
      return { cpuPercent: round(cpuPercent), peakCpuPercent: round(peakCpu), peakRssMiB: round(peakRss), processes };
    },
  };
}
