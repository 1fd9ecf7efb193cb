/**
 * The agent's Prometheus metrics, in a registry of its own (never prom-client's global one, so two
 * agents in one process, or a test, never share counters). The agent reports what happens through
 * the methods below; `metrics-server.ts` serves the registry. Durations are given in milliseconds,
 * as everywhere in cuttle, and exported in seconds, as Prometheus expects.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { OUTCOMES, TASK_STATES, type Outcome, type TaskState } from '../protocol/index.js';
import type { JournalEntry, JournalInput } from '../workspace/index.js';

/** Steps last from seconds to hours. */
const TASK_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];
/** Phases are often sub-second (cleaning) and sometimes long (running). */
const PHASE_BUCKETS_S = [0.05, 0.25, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400];
/** A warm cache answers in milliseconds; a cold pull or build takes minutes. */
const IMAGE_BUCKETS_S = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** What `/readyz` answers from: the last states the agent reported. */
export interface Readiness {
  connected: boolean;
  engine: boolean;
}

export interface AgentMetricsOptions {
  /** The agent's version, exported as `cuttle_agent_info{version}`. */
  version?: string;
  /** Process and Node.js metrics (CPU, memory, event loop, GC, handles); true unless false. */
  defaultMetrics?: boolean;
  /** The clock, for tests. */
  now?: () => number;
}

export class AgentMetrics {
  /** The registry to serve; `text()` renders it. */
  readonly registry = new Registry();
  readonly #now: () => number;
  readonly #connected: Gauge;
  readonly #reconnects: Counter;
  readonly #engine: Gauge;
  readonly #finished: Counter<'outcome'>;
  readonly #taskDuration: Histogram<'outcome'>;
  readonly #phaseDuration: Histogram<'phase'>;
  readonly #pullDuration: Histogram;
  readonly #buildDuration: Histogram;
  readonly #logBytes: Counter;
  readonly #artifactBytes: Counter;
  /** Queued task ids with when they were queued; the gauges are the sizes of these. */
  readonly #queued = new Map<string, number>();
  readonly #running = new Set<string>();
  /** The last task ids that finished (1024 at most), so a repeated report is not counted twice. */
  readonly #finishedIds = new Set<string>();
  #backlog: () => number = () => 0;
  #readiness: Readiness = { connected: false, engine: false };

  constructor(options: AgentMetricsOptions = {}) {
    this.#now = options.now ?? Date.now;
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const info = new Gauge({
      name: 'cuttle_agent_info',
      help: 'Always 1; the labels describe the agent.',
      labelNames: ['version'],
      registers,
    });
    info.set({ version: options.version ?? 'unknown' }, 1);
    this.#connected = new Gauge({
      name: 'cuttle_server_connected',
      help: '1 while the agent holds a welcomed connection to its server, else 0.',
      registers,
    });
    this.#reconnects = new Counter({
      name: 'cuttle_server_reconnects_total',
      help: 'Connections to the server after the first one (each follows a disconnection).',
      registers,
    });
    this.#engine = new Gauge({
      name: 'cuttle_docker_engine_available',
      help: '1 when the last probe reached the Docker engine, else 0.',
      registers,
    });
    const queued = this.#queued;
    const running = this.#running;
    new Gauge({
      name: 'cuttle_tasks_queued',
      help: 'Tasks accepted and waiting for a free slot (capacity).',
      registers,
      collect() {
        this.set(queued.size);
      },
    });
    new Gauge({
      name: 'cuttle_tasks_running',
      help: 'Tasks taking a slot: preparing, pulling, building, running, collecting or cleaning.',
      registers,
      collect() {
        this.set(running.size);
      },
    });
    this.#finished = new Counter({
      name: 'cuttle_tasks_finished_total',
      help: 'Tasks that ended, by outcome (success, failure, cancelled, timeout, error).',
      labelNames: ['outcome'],
      registers,
    });
    this.#taskDuration = new Histogram({
      name: 'cuttle_task_duration_seconds',
      help: 'From the start of preparing to the result, by outcome.',
      labelNames: ['outcome'],
      buckets: TASK_BUCKETS_S,
      registers,
    });
    this.#phaseDuration = new Histogram({
      name: 'cuttle_task_phase_duration_seconds',
      help: 'Time tasks spent in each state (queued, preparing, pulling, building, running, collecting, cleaning).',
      labelNames: ['phase'],
      buckets: PHASE_BUCKETS_S,
      registers,
    });
    this.#pullDuration = new Histogram({
      name: 'cuttle_image_pull_duration_seconds',
      help: 'Image pulls (and checks that an image is present), per task.',
      buckets: IMAGE_BUCKETS_S,
      registers,
    });
    this.#buildDuration = new Histogram({
      name: 'cuttle_image_build_duration_seconds',
      help: 'Image builds from a Dockerfile (inline or Git), cache hits included, per task.',
      buckets: IMAGE_BUCKETS_S,
      registers,
    });
    this.#logBytes = new Counter({
      name: 'cuttle_log_sent_bytes_total',
      help: 'Bytes of step log lines (UTF-8, masked) journalled for the server, which gets each once.',
      registers,
    });
    this.#artifactBytes = new Counter({
      name: 'cuttle_artifact_sent_bytes_total',
      help: 'Bytes of artifacts journalled for the server, which gets each once.',
      registers,
    });
    const backlog = (): number => this.#backlog();
    new Gauge({
      name: 'cuttle_journal_backlog_events',
      help: 'Events journalled on disk that the server has not acknowledged yet, all tasks together.',
      registers,
      collect() {
        this.set(Math.max(0, backlog()));
      },
    });
    // Every series exists from the first scrape, so rate() and increase() see the first event.
    for (const outcome of OUTCOMES) {
      this.#finished.inc({ outcome }, 0);
      this.#taskDuration.zero({ outcome });
    }
    for (const phase of TASK_STATES) this.#phaseDuration.zero({ phase });
    this.connectionState(false);
    this.engineAvailable(false);
  }

  /** The connection was welcomed (true) or lost (false). */
  connectionState(connected: boolean): void {
    this.#connected.set(connected ? 1 : 0);
    this.#readiness = { ...this.#readiness, connected };
  }

  /** A welcome that is not the agent's first. */
  reconnected(): void {
    this.#reconnects.inc();
  }

  /** The result of a probe of the Docker engine. */
  engineAvailable(available: boolean): void {
    this.#engine.set(available ? 1 : 0);
    this.#readiness = { ...this.#readiness, engine: available };
  }

  /** What the agent last reported: the basis of `/readyz`. */
  readiness(): Readiness {
    return { ...this.#readiness };
  }

  /** A task was accepted but all slots are taken. */
  taskQueued(taskId: string): void {
    if (!this.#running.has(taskId)) this.#queued.set(taskId, this.#now());
  }

  /** A task took a slot; if it was queued, its wait is observed as the `queued` phase. */
  taskStarted(taskId: string): void {
    const queuedAt = this.#queued.get(taskId);
    if (queuedAt !== undefined) {
      this.#queued.delete(taskId);
      this.phase('queued', this.#now() - queuedAt);
    }
    this.#running.add(taskId);
  }

  /** A task produced its result. Counted once per task id even if reported twice. */
  taskFinished(taskId: string, outcome: Outcome, durationMs: number): void {
    const wasQueued = this.#queued.delete(taskId);
    const wasRunning = this.#running.delete(taskId);
    if (!wasQueued && !wasRunning && this.#finishedIds.has(taskId)) return;
    this.#rememberFinished(taskId);
    this.#finished.inc({ outcome });
    this.#taskDuration.observe({ outcome }, seconds(durationMs));
  }

  /** Time a task spent in one state. */
  phase(name: TaskState, durationMs: number): void {
    this.#phaseDuration.observe({ phase: name }, seconds(durationMs));
  }

  /**
   * A clock for one task's states: call `enter(state)` on each state event and `end()` at the
   * result; each state's time is observed as a phase, `pulling` and `building` also as pull and
   * build durations.
   */
  phaseClock(): PhaseClock {
    return new PhaseClock(this, this.#now);
  }

  /**
   * One task's journalled events in one call: states are timed as phases, the result finishes
   * the task (outcome and duration), log lines and artifacts count their bytes.
   */
  forTask(taskId: string): TaskMetrics {
    return new TaskMetrics(this, taskId, this.#now);
  }

  pullDuration(durationMs: number): void {
    this.#pullDuration.observe(seconds(durationMs));
  }

  buildDuration(durationMs: number): void {
    this.#buildDuration.observe(seconds(durationMs));
  }

  /** Bytes of log lines for the server. */
  logBytes(bytes: number): void {
    if (bytes > 0) this.#logBytes.inc(bytes);
  }

  /** Bytes of an artifact for the server. */
  artifactBytes(bytes: number): void {
    if (bytes > 0) this.#artifactBytes.inc(bytes);
  }

  /**
   * An event was journalled (to be sent): counts the bytes of log lines (the journal measured
   * them as it encoded the event) and of artifacts.
   */
  journalled(event: JournalInput, written: Pick<JournalEntry, 'lineBytes'>): void {
    if (event.kind === 'log' || event.kind === 'log-text') {
      this.logBytes(written.lineBytes);
    } else if (event.kind === 'artifact') {
      this.artifactBytes(event.size);
    }
  }

  /**
   * Unacknowledged journalled events, all tasks together: a number now, or a function read at
   * every scrape (preferred: it is never stale).
   */
  journalBacklog(events: number | (() => number)): void {
    this.#backlog = typeof events === 'number' ? () => events : events;
  }

  /** The registry in the Prometheus text format. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #rememberFinished(taskId: string): void {
    this.#finishedIds.add(taskId);
    if (this.#finishedIds.size > 1024) {
      const oldest = this.#finishedIds.values().next();
      if (oldest.done !== true) this.#finishedIds.delete(oldest.value);
    }
  }
}

/** What AgentMetrics.forTask returns: give it each event the task journals. */
export class TaskMetrics {
  readonly #metrics: AgentMetrics;
  readonly #taskId: string;
  readonly #phases: PhaseClock;

  constructor(metrics: AgentMetrics, taskId: string, now: () => number = Date.now) {
    this.#metrics = metrics;
    this.#taskId = taskId;
    this.#phases = new PhaseClock(metrics, now);
  }

  journalled(event: JournalInput, written: Pick<JournalEntry, 'lineBytes'>): void {
    this.#metrics.journalled(event, written);
    if (event.kind === 'state') {
      this.#phases.enter(event.state);
    } else if (event.kind === 'result') {
      this.#phases.end();
      this.#metrics.taskFinished(this.#taskId, event.outcome, event.durationMs);
    }
  }
}

/** One task's state clock (see AgentMetrics.phaseClock). */
export class PhaseClock {
  readonly #metrics: AgentMetrics;
  readonly #now: () => number;
  #current: { state: TaskState; since: number } | undefined;

  constructor(metrics: AgentMetrics, now: () => number = Date.now) {
    this.#metrics = metrics;
    this.#now = now;
  }

  /** The task entered `state` (entering the state it is in changes nothing). */
  enter(state: TaskState): void {
    if (this.#current?.state === state) return;
    this.end();
    this.#current = { state, since: this.#now() };
  }

  /** The task ended: the state it was in is observed. */
  end(): void {
    const current = this.#current;
    if (current === undefined) return;
    this.#current = undefined;
    const durationMs = this.#now() - current.since;
    this.#metrics.phase(current.state, durationMs);
    if (current.state === 'pulling') this.#metrics.pullDuration(durationMs);
    if (current.state === 'building') this.#metrics.buildDuration(durationMs);
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}
