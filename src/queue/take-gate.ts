/**
 * Gates the *taking* of jobs, not their processing, so that a worker process
 * can vary its jobs in flight at run time although Bee-Queue's
 * `process(concurrency)` is fixed at start.
 *
 * Bee-Queue runs `concurrency` "ticks" per queue; each tick calls
 * `_getNextJob()` (BRPOPLPUSH waiting → active, then HGET of the job), runs the
 * job, and calls it again. The runner starts Bee-Queue at the maximum and wraps
 * `_getNextJob` of its queue so that a tick first waits here for a permit
 * (queue/worker-runner.ts). A job is therefore only moved to `active` when a
 * slot is free to run it at once: nothing sits in `active` unprocessed, where
 * stall detection would keep it for this process and other processes could not
 * take it. Ticks beyond the limit are parked promises here, not Redis calls.
 *
 * Permits count jobs running, takes in flight (a BRPOPLPUSH that may return a
 * job), and jobs taken whose handler has not started yet. A queue has at most
 * `takesPerLane` takes in flight: on an empty queue a BRPOPLPUSH blocks until a
 * job comes, and those blocked takes must not use up the permits of the
 * process's other queues; the cap is a share of the limit (a quarter of it
 * over the queues), at least 1, so a low limit still serves every queue. A
 * queue whose last take left a backlog (`taken(…, backlog)`) has no cap: its
 * takes return at once, in batches (bee-queue-hooks.ts), and with short jobs
 * (a 0 ms LLM) the takes in flight, not the jobs running, hold most permits:
 * capped, they kept a process at ~1,200 jobs/s with 10 jobs running. When
 * such a queue runs dry, the takes of its last batch that found no job block
 * in BRPOPLPUSH with their permits until jobs come: at most one batch's worth,
 * as the jobs of that batch bring back the cap for every later take.
 *
 * Lowering the limit never cuts a job: it only stops new takes until enough
 * jobs end.
 */

export interface Lane {
  readonly name: string;
  /** Takes in flight. */
  taking: number;
  /** Taken, handler not started yet (Bee-Queue starts it in the same run of microtasks, or drops it when closing). */
  readonly pending: Set<string>;
  /** Ticks waiting for a permit, oldest first. */
  readonly waiters: ((granted: boolean) => void)[];
  closed: boolean;
  /** The queue's last take left jobs waiting: its takes do not block, and are not capped. */
  backlog: boolean;
}

/**
 * Most takes in flight per queue, whatever the limit. A take is a round trip, longer when the event loop is
 * busy (100 ms at 1,800 tasks/s on 2 cores): 32 takes in flight capped a process at ~300 jobs/s in a first run.
 */
export const MAX_TAKES_PER_LANE = 1024;

export class TakeGate {
  private limitValue: number;
  private running = 0;
  private taking = 0;
  private pendingCount = 0;
  private readonly lanes: Lane[] = [];
  /** Where the next round of grants starts, so that no queue always goes first. */
  private nextLane = 0;

  constructor(limit: number) {
    this.limitValue = Math.max(1, Math.floor(limit));
  }

  get limit(): number {
    return this.limitValue;
  }

  /** Jobs running (their handler started and not ended). */
  get inFlight(): number {
    return this.running;
  }

  /** Permits in use: running, taking, and taken but not started. */
  get used(): number {
    return this.running + this.taking + this.pendingCount;
  }

  setLimit(limit: number): void {
    this.limitValue = Math.max(1, Math.floor(limit));
    this.pump();
  }

  /** A queue's share of the gate; closed when its Bee-Queue worker closes. */
  openLane(name: string): Lane {
    const lane: Lane = { name, taking: 0, pending: new Set(), waiters: [], closed: false, backlog: false };
    this.lanes.push(lane);
    return lane;
  }

  /** Refuses the lane's waiting ticks and forgets its taken-not-started jobs (Bee-Queue will not run them). */
  closeLane(lane: Lane): void {
    if (lane.closed) return;
    lane.closed = true;
    this.lanes.splice(this.lanes.indexOf(lane), 1);
    for (const resolve of lane.waiters.splice(0)) resolve(false);
    this.pendingCount -= lane.pending.size;
    lane.pending.clear();
    this.pump();
  }

  /** Resolves true when the lane may take one job (it then must call `taken`), false when the lane closed. */
  acquire(lane: Lane): Promise<boolean> {
    if (lane.closed) return Promise.resolve(false);
    if (lane.waiters.length === 0 && this.canTake(lane)) {
      this.grant(lane);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      lane.waiters.push(resolve);
    });
  }

  /** The take of a granted permit returned: a job id (its handler will start), or none; and whether jobs wait. */
  taken(lane: Lane, jobId: string | undefined, backlog = false): void {
    this.taking--;
    lane.taking--;
    lane.backlog = backlog;
    if (jobId !== undefined && !lane.closed && !lane.pending.has(jobId)) {
      lane.pending.add(jobId);
      this.pendingCount++;
    }
    this.pump();
  }

  /** A job's handler starts. */
  started(lane: Lane, jobId: string): void {
    if (lane.pending.delete(jobId)) this.pendingCount--;
    this.running++;
  }

  /** A job's handler ended. */
  ended(): void {
    this.running--;
    this.pump();
  }

  /** Ticks waiting for a permit, over every queue. */
  get waiting(): number {
    let n = 0;
    for (const lane of this.lanes) n += lane.waiters.length;
    return n;
  }

  private takesPerLane(): number {
    const lanes = Math.max(1, this.lanes.length);
    return Math.max(1, Math.min(MAX_TAKES_PER_LANE, Math.floor(this.limitValue / (4 * lanes))));
  }

  private canTake(lane: Lane): boolean {
    return this.used < this.limitValue && (lane.backlog || lane.taking < this.takesPerLane());
  }

  private grant(lane: Lane): void {
    this.taking++;
    lane.taking++;
  }

  /** Grants waiting ticks, one per queue in turn, while permits are free and a queue is under its take cap. */
  private pump(): void {
    const n = this.lanes.length;
    let idle = 0;
    while (idle < n && this.used < this.limitValue) {
      const lane = this.lanes[this.nextLane % n] as Lane;
      this.nextLane = (this.nextLane + 1) % n;
      if (lane.waiters.length > 0 && this.canTake(lane)) {
        this.grant(lane);
        (lane.waiters.shift() as (granted: boolean) => void)(true);
        idle = 0;
      } else idle++;
    }
  }
}
