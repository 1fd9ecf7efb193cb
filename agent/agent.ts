/**
 * The daemon: one connection to the server, the tasks it holds (running, queued, or finished and
 * waiting for the server's ack), and their journals.
 */
import { EventEmitter } from 'node:events';
import {
  AgentConnection,
  PROTOCOL_VERSION,
  type Hello,
  type ServerMessageAfterWelcome,
  type Task,
  type Welcome,
} from '../protocol/index.js';
import {
  AgentHome,
  JournalLeftoverError,
  listWorkFolders,
  PackageCache,
  removeWorkFolder,
  TaskJournal,
  ToolStore,
  toolKey,
} from '../workspace/index.js';
import {
  checkHomeVisibleToEngine,
  DockerClient,
  ImageResolver,
  runningInContainer,
  type EngineInfo,
} from '../images/index.js';
import type { AgentConfig } from './config.js';
import type { Logger } from './logger.js';
import { BlobFetcher } from './blob-fetcher.js';
import type { AgentMetrics } from './metrics.js';
import { IdleCollector } from './idle-collector.js';
import { parseCheckpoint, parseRunInfo, type RunInfo } from './run-state.js';
import { ServerChannel } from './server-channel.js';
import { DEFAULT_OUTBOX_LIMITS, TaskOutbox } from './task-outbox.js';
import { TaskRun } from './task-run.js';
import { agentVersion } from './version.js';

/** After SIGTERM and the grace period, how long results may take to be acknowledged. */
const FINAL_ACK_WAIT_MS = 5000;
/** How often the Docker engine is asked whether it is there (for hello, readiness, recovery). */
const ENGINE_PROBE_MS = 5000;

interface HeldTask {
  journal: TaskJournal;
  outbox: TaskOutbox;
  run: TaskRun | undefined;
  done: Promise<void> | undefined;
}

export type AgentEvents = {
  /** The agent has drained (and was asked to exit when drained), or stopped. */
  exit: [];
};

export class Agent extends EventEmitter<AgentEvents> {
  #config: AgentConfig;
  readonly home: AgentHome;
  readonly #logger: Logger;
  readonly #docker: DockerClient;
  readonly #connection: AgentConnection;
  readonly #channel: ServerChannel;
  readonly #packages: PackageCache;
  readonly #blobs: BlobFetcher;
  readonly #images: ImageResolver;
  readonly #tools: ToolStore;
  /** Only when they are served (--metrics-listen): prom-client is not even loaded otherwise. */
  readonly #metrics: AgentMetrics | undefined;
  #welcomed = false;
  /** Step containers whose removal failed (the engine was away), removed once it answers. */
  readonly #leftovers = new Set<string>();
  /** The tools installed, for hello (refreshed after installs and prunes). */
  #installedTools: { name: string; version: string }[] = [];
  readonly #held = new Map<string, HeldTask>();
  readonly #queue: string[] = [];
  #arrivals: Promise<void> = Promise.resolve();
  #engine: EngineInfo | undefined;
  #running = 0;
  #draining = false;
  /** `drained` went out on this connection since the last `drain` (each `drain` is answered). */
  #drainedSent = false;
  /**
   * The engine was away when the agent started, so the containers a previous run left are swept
   * when it returns, all but these (the steps taken over then).
   */
  #sweepOnEngineReturn: ReadonlySet<string> | undefined;
  /** 'exit' was emitted (with --exit-when-drained): once is enough. */
  #exitEmitted = false;
  #stopping = false;
  #engineTimer: NodeJS.Timeout | undefined;
  /** The engine's absence was logged (once, until it returns). */
  #warnedEngine = false;
  /** Frees what the last tasks left behind once none is held (see IdleCollector). */
  readonly #idleCollector = new IdleCollector();

  private constructor(
    config: AgentConfig,
    home: AgentHome,
    logger: Logger,
    docker: DockerClient,
    metrics: AgentMetrics | undefined,
  ) {
    super();
    this.#metrics = metrics;
    this.#config = config;
    this.home = home;
    this.#logger = logger;
    this.#docker = docker;
    this.#connection = new AgentConnection({
      url: config.server,
      token: config.token,
      ...(config.ca === undefined ? {} : { caFile: config.ca }),
      ...(config.serverCertSha256 === undefined ? {} : { certSha256: config.serverCertSha256 }),
      allowInsecure: config.allowInsecure,
      hello: () => this.#hello(),
      logger,
    });
    this.#channel = new ServerChannel(this.#connection);
    this.#packages = new PackageCache(home.packagesDir);
    this.#blobs = new BlobFetcher(this.#connection, this.#packages);
    this.#tools = new ToolStore(home.toolsDir);
    this.#images = new ImageResolver(
      docker,
      { allowedImages: config.allowedImages, allowedPullPolicies: config.allowedPullPolicies },
      { agentId: home.agentId },
      {
        retention: {
          maxCount: config.builtImagesMaxCount,
          ...(config.builtImagesMaxBytes === undefined
            ? {}
            : { maxBytes: config.builtImagesMaxBytes }),
        },
      },
    );
  }

  /** The configuration in force (SIGHUP may change the settings that are safe to change). */
  get config(): AgentConfig {
    return this.#config;
  }

  /**
   * Applies a re-read configuration where that is safe: capacity, policies, limits, log level
   * take effect for the next task; what the connection, the home or the image resolver were made
   * with (server, token, home, ...) needs a restart and is kept. Returns what changed.
   */
  reload(next: AgentConfig): { applied: string[]; needsRestart: string[] } {
    const current = this.#config;
    const kept = {
      server: current.server,
      token: current.token,
      home: current.home,
      name: current.name,
      ca: current.ca,
      serverCertSha256: current.serverCertSha256,
      allowInsecure: current.allowInsecure,
      logFormat: current.logFormat,
      metricsListen: current.metricsListen,
      allowedImages: current.allowedImages,
      allowedPullPolicies: current.allowedPullPolicies,
      builtImagesMaxCount: current.builtImagesMaxCount,
      builtImagesMaxBytes: current.builtImagesMaxBytes,
      prepull: current.prepull,
    };
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const [key, value] of Object.entries(next)) {
      const before: unknown = Object.entries(current).find(([k]) => k === key)?.[1];
      if (JSON.stringify(before) === JSON.stringify(value)) continue;
      (key in kept ? needsRestart : applied).push(key);
    }
    this.#config = { ...next, ...kept };
    if (applied.includes('logLevel')) this.#logger.level = next.logLevel;
    this.#logger.info('configuration reloaded', { applied, needsRestart });
    // More capacity: queued tasks start now.
    while (this.#running < this.#config.capacity && this.#queue.length > 0) {
      const queued = this.#queue.shift();
      if (queued !== undefined) this.#start(queued, false);
    }
    return { applied, needsRestart };
  }

  get id(): string {
    return this.home.agentId;
  }

  /** Opens the home, finds the engine, takes over what a previous run left, and dials out. */
  static async start(
    config: AgentConfig,
    logger: Logger,
    options: { metrics?: AgentMetrics } = {},
  ): Promise<Agent> {
    const home = await AgentHome.open(config.home);
    const agent = new Agent(config, home, logger, DockerClient.connect(), options.metrics);
    agent.#metrics?.journalBacklog(() => {
      let backlog = 0;
      for (const held of agent.#held.values())
        backlog += held.journal.lastSeq - held.outbox.ackedSeq;
      return backlog;
    });
    await agent.#probeEngine();
    logger.info(`cuttle ${agentVersion()} starting`, {
      agentId: home.agentId,
      home: home.root,
      server: config.server,
      docker:
        agent.#engine === undefined
          ? 'unreachable'
          : `${agent.#engine.version} (API ${agent.#engine.apiVersion})`,
    });
    // In a container, the engine must see the home at the same path (docs/operations.md).
    if (agent.#engine !== undefined && runningInContainer()) {
      const check = await checkHomeVisibleToEngine(agent.#docker, home.root, home.agentId);
      if (!check.checked) {
        logger.warn(
          `cannot check that the Docker engine sees the home ${home.root}: ${check.reason}`,
        );
      }
    }
    await agent.#recover();
    await agent.#tools.removeIncomplete();
    await agent.#pruneTools();
    if (config.toolImageMounts && agent.#engine?.imageMounts !== true) {
      logger.warn(
        'toolImageMounts is set but this Docker engine cannot mount images (Engine API 1.48 or later); tools are transferred and unpacked instead',
      );
    }
    agent.#connection.on('welcome', (welcome) => agent.#onWelcome(welcome));
    agent.#connection.on('message', (message) => agent.#onMessage(message));
    agent.#connection.on('blob-frame', (transfer, chunk) => agent.#blobs.onFrame(transfer, chunk));
    agent.#connection.on('disconnected', (info) => {
      if (!agent.#stopping) {
        logger.warn('disconnected from the server', { reason: info.reason, code: info.code });
      }
      agent.#metrics?.connectionState(false);
      for (const held of agent.#held.values()) held.outbox.disconnected();
      agent.#blobs.onDisconnect();
      void agent.#probeEngine();
    });
    agent.#connection.start();
    // While the engine is unreachable, look for it again now and then: it recovers by itself.
    agent.#engineTimer = setInterval(() => void agent.#probeEngine(), ENGINE_PROBE_MS);
    agent.#engineTimer.unref();
    if (config.prepull.length > 0 && agent.#engine !== undefined) void agent.#prepull();
    return agent;
  }

  /** Stops as on SIGTERM: no new tasks, running steps get the grace period, then are cancelled. */
  async shutdown(): Promise<void> {
    this.#draining = true;
    const graceMs = this.config.graceSeconds * 1000;
    this.#logger.info('shutting down: no new tasks', {
      running: this.#running,
      graceSeconds: this.config.graceSeconds,
    });
    if (!(await this.#allSettled(graceMs))) {
      this.#logger.warn('grace period over: cancelling the steps still running');
      for (const id of this.#queue.splice(0)) this.#start(id, true);
      for (const held of this.#held.values()) held.run?.cancel();
      await Promise.all(
        [...this.#held.values()].flatMap((h) => (h.done === undefined ? [] : [h.done])),
      );
    }
    await this.#waitFor(() => this.#held.size === 0, FINAL_ACK_WAIT_MS);
    this.#stopping = true;
    clearInterval(this.#engineTimer);
    this.#idleCollector.dispose();
    await this.#connection.stop();
    for (const held of this.#held.values()) await held.journal.close().catch(() => undefined);
    this.#logger.info('stopped', { unacknowledgedTasks: this.#held.size });
  }

  /** A second SIGTERM: stop waiting for the grace period, cancel every step now. */
  cancelAll(): void {
    this.#logger.warn('cancelling every step now');
    for (const id of this.#queue.splice(0)) this.#start(id, true);
    for (const held of this.#held.values()) held.run?.cancel();
  }

  async #allSettled(timeoutMs: number): Promise<boolean> {
    return this.#waitFor(() => this.#running === 0 && this.#queue.length === 0, timeoutMs);
  }

  async #waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  }

  async #probeEngine(): Promise<void> {
    try {
      const wasDown = this.#warnedEngine && this.#engine === undefined;
      this.#engine = await this.#docker.engineInfo();
      this.#metrics?.engineAvailable(true);
      for (const id of [...this.#leftovers]) {
        await this.#docker.remove(id);
        this.#leftovers.delete(id);
        this.#logger.info('removed a step container left while the engine was away', {
          containerId: id,
        });
      }
      const kept = this.#sweepOnEngineReturn;
      if (kept !== undefined) {
        this.#sweepOnEngineReturn = undefined;
        await this.#sweepContainers(kept);
      }
      if (wasDown) {
        this.#warnedEngine = false;
        this.#logger.info('the Docker engine is reachable again', { docker: this.#engine.version });
      }
    } catch (error) {
      if (this.#engine !== undefined || !this.#warnedEngine) {
        this.#logger.warn(
          'the Docker engine cannot be reached; container tasks will fail with docker-unavailable',
          {
            error: error instanceof Error ? error.message : String(error),
          },
        );
        this.#warnedEngine = true;
      }
      this.#engine = undefined;
      this.#metrics?.engineAvailable(false);
    }
  }

  /**
   * Removes this agent's containers but `kept` (steps taken over) and those of steps this run of
   * the agent is running.
   */
  async #sweepContainers(kept: ReadonlySet<string>): Promise<void> {
    for (const container of await this.#docker.listContainers({ agentId: this.id })) {
      if (kept.has(container.id) || this.#held.get(container.taskId)?.run !== undefined) continue;
      this.#logger.info('removing a step container left by a previous run', {
        containerId: container.id,
        taskId: container.taskId,
      });
      await this.#docker.remove(container.id);
    }
  }

  /** Takes over what a previous run of this agent left: journals, containers, work folders. */
  async #recover(): Promise<void> {
    const journals = await TaskJournal.loadAll(this.home.journalDir, (error) => {
      if (error instanceof JournalLeftoverError) {
        // What a crash left that nothing can load: removed, or to be removed at the next start.
        const level = error.removed ? 'info' : 'warn';
        this.#logger[level]('cleaning the journals up after a crash', { error: error.message });
        return;
      }
      this.#logger.error('a task journal cannot be read; it is left in place', {
        path: error.path,
        error: error.message,
      });
    });
    // Steps that outlived the previous run: their containers keep running (the agent never ties
    // a container's life to its own), and their journals say where they were.
    const takeOver: { taskId: string; info: RunInfo | undefined }[] = [];
    for (const journal of journals) {
      this.#hold(journal);
      if (journal.finished) continue;
      takeOver.push({ taskId: journal.taskId, info: parseRunInfo(await journal.readRunInfo()) });
    }
    const keptContainers = new Set(
      takeOver.flatMap((t) => (t.info?.kind === 'container' ? [t.info.containerId] : [])),
    );
    const keptFolders = new Set(
      takeOver.flatMap((t) => (t.info === undefined ? [] : [t.info.workFolder])),
    );
    // An engine still away (the agent may start before it, as at boot) is swept on its return.
    if (this.#engine !== undefined) await this.#sweepContainers(keptContainers);
    else this.#sweepOnEngineReturn = keptContainers;
    for (const folder of await listWorkFolders(this.home.workDir)) {
      if (keptFolders.has(folder)) continue;
      this.#logger.info('removing a step folder left by a previous run', { path: folder });
      await removeWorkFolder(folder).catch((error: unknown) =>
        this.#logger.warn('cannot remove a step folder left by a previous run', {
          path: folder,
          error: String(error),
        }),
      );
    }
    for (const { taskId, info } of takeOver) {
      if (info !== undefined) {
        this.#logger.warn('taking over a step that ran when the agent stopped', { taskId });
        this.#start(taskId, false, info);
      } else if (this.#running < this.config.capacity) {
        // No step had started (no run info is written before its container exists): start it.
        this.#start(taskId, false);
      } else {
        this.#metrics?.taskQueued(taskId);
        this.#queue.push(taskId);
      }
    }
  }

  #hold(journal: TaskJournal): HeldTask {
    const held: HeldTask = {
      journal,
      outbox: new TaskOutbox(
        journal,
        this.#channel,
        (error) =>
          this.#logger.error(
            'cannot send the events of a task; they stay in its journal until the next connection',
            { taskId: journal.taskId, error: String(error) },
          ),
        { ...DEFAULT_OUTBOX_LIMITS, journalLimitBytes: this.config.journalLimitBytes },
      ),
      run: undefined,
      done: undefined,
    };
    this.#held.set(journal.taskId, held);
    return held;
  }

  #hello(): Hello {
    return {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      agent: { id: this.id, name: this.config.name, version: agentVersion() },
      capacity: this.config.capacity,
      capabilities: {
        docker: this.#engine ?? null,
        hostExecution: this.config.allowHostExecution,
        shells: ['bash', 'sh'],
        tools: this.#installedTools,
      },
      tasks: [...this.#held.values()].map((h) => ({
        taskId: h.journal.taskId,
        lastSeq: h.journal.lastSeq,
        finished: h.journal.finished,
      })),
    };
  }

  #onWelcome(welcome: Welcome): void {
    this.#logger.info('connected to the server', {
      sessionId: welcome.sessionId,
      resumed: welcome.resume.length,
    });
    this.#metrics?.connectionState(true);
    if (this.#welcomed) this.#metrics?.reconnected();
    this.#welcomed = true;
    const resume = new Map(welcome.resume.map((r) => [r.taskId, r.fromSeq]));
    this.#blobs.onWelcome();
    // A server that lost the first `drained` (or any new session) hears it again.
    this.#drainedSent = false;
    for (const [taskId, held] of this.#held) {
      const fromSeq = resume.get(taskId);
      if (fromSeq === undefined) {
        this.#logger.warn('the server does not know this task; cancelling and forgetting it', {
          taskId,
        });
        held.run?.cancel();
        this.#queueRemove(taskId);
        void this.#forget(taskId, held);
        continue;
      }
      if (fromSeq - 1 < held.outbox.ackedSeq) {
        this.#connection.send({
          type: 'error',
          code: 'invalid-message',
          message: `welcome.resume: fromSeq ${fromSeq} is below what the server acknowledged (${held.outbox.ackedSeq}); re-sending from ${held.outbox.ackedSeq + 1}`,
          ref: taskId,
        });
      }
      held.outbox.resume(fromSeq);
      if (held.outbox.complete) void this.#forget(taskId, held);
    }
    this.#maybeDrained();
  }

  #onMessage(message: ServerMessageAfterWelcome): void {
    switch (message.type) {
      case 'task':
        // One at a time, in arrival order: slots go to tasks in the order the server sent them.
        this.#arrivals = this.#arrivals
          .then(() => this.#onTask(message))
          .catch((error: unknown) => {
            this.#logger.error('cannot take a task', {
              taskId: message.taskId,
              error: String(error),
            });
          });
        return;
      case 'cancel': {
        const held = this.#held.get(message.taskId);
        if (held === undefined || held.journal.finished) return;
        if (this.#queueRemove(message.taskId)) this.#start(message.taskId, true);
        else held.run?.cancel();
        return;
      }
      case 'ack': {
        const held = this.#held.get(message.taskId);
        if (held !== undefined && held.outbox.ack(message.seq))
          void this.#forget(message.taskId, held);
        return;
      }
      case 'drain':
        this.#logger.info('the server asked the agent to drain');
        this.#draining = true;
        this.#drainedSent = false;
        this.#maybeDrained();
        return;
      case 'error':
        this.#logger.warn('the server reported an error', {
          code: message.code,
          message: message.message,
          ref: message.ref,
        });
        return;
      case 'blob-begin':
      case 'blob-end':
      case 'blob-missing':
        this.#blobs.onMessage(message);
        return;
    }
  }

  async #onTask(task: Task): Promise<void> {
    const { taskId } = task;
    if (this.#held.has(taskId)) {
      this.#connection.send({ type: 'accepted', taskId });
      return;
    }
    if (this.#draining) {
      this.#connection.send({
        type: 'rejected',
        taskId,
        code: 'draining',
        message: 'this agent is draining and accepts no new task',
      });
      return;
    }
    let journal: TaskJournal;
    try {
      journal = await TaskJournal.create(this.home.journalDir, task);
    } catch (error) {
      const failure = error instanceof Error ? error.message : String(error);
      this.#logger.error('cannot start a task journal', { taskId, error: failure });
      this.#connection.send({
        type: 'error',
        code: 'workspace-error',
        message: failure,
        ref: taskId,
      });
      return;
    }
    const held = this.#hold(journal);
    this.#connection.send({ type: 'accepted', taskId });
    this.#logger.info('task accepted', { taskId, name: task.name });
    held.outbox.resume(1);
    if (this.#running < this.config.capacity) {
      this.#start(taskId, false);
    } else {
      this.#metrics?.taskQueued(taskId);
      this.#queue.push(taskId);
      await journal.append({ kind: 'state', state: 'queued' });
      held.outbox.pump();
    }
  }

  #start(taskId: string, cancelled: boolean, resume?: RunInfo): void {
    const held = this.#held.get(taskId);
    if (held === undefined) return;
    const run = new TaskRun({
      task: held.journal.task,
      journal: held.journal,
      outbox: held.outbox,
      home: this.home,
      docker: this.#docker,
      hostExecution: this.config.allowHostExecution,
      maxArtifactBytes: this.config.maxArtifactBytes,
      images: this.#images,
      tools: this.#tools,
      leftover: (containerId) => this.#leftovers.add(containerId),
      metrics: this.#metrics?.forTask(taskId),
      imageMounts: {
        wanted: this.config.toolImageMounts,
        supported: this.#engine?.imageMounts ?? false,
        repository: this.config.toolImageRepository,
        pullPolicy: this.config.toolImagePullPolicy,
      },
      optionsPolicy: {
        allowPrivileged: this.config.allowPrivileged,
        allowHostNamespaces: this.config.allowHostNamespaces,
        allowedCapabilities: this.config.allowedCapabilities,
        allowDevices: this.config.allowDevices,
        allowUnconfined: this.config.allowUnconfined,
        allowedBindMounts: this.config.allowedBindMounts,
        allowVolumesFrom: this.config.allowVolumesFrom,
        // A step that mounted these could read other steps' variables or drive the engine.
        protectedHostPaths: [this.home.root, ...this.#docker.socketPaths],
      },
      packages: { cache: this.#packages, fetch: (sha256, size) => this.#blobs.fetch(sha256, size) },
      logger: this.#logger,
    });
    if (cancelled) run.cancel();
    held.run = run;
    this.#running += 1;
    this.#idleCollector.workStarted();
    this.#metrics?.taskStarted(taskId);
    held.done = (
      resume === undefined
        ? run.run()
        : run.resume(resume, parseCheckpoint(held.journal.checkpoint))
    )
      .catch((error: unknown) => {
        this.#logger.error('task run failed', { taskId, error: String(error) });
      })
      .finally(() => {
        this.#running -= 1;
        held.run = undefined;
        void this.#evictPackages();
        void this.#pruneTools();
        void this.#pruneImages();
        this.#logger.info('task finished', { taskId });
        const next = this.#queue.shift();
        if (next !== undefined) this.#start(next, false);
        this.#maybeDrained();
      });
  }

  /** Warms the worker: pulls the configured images in the background (missing ones only). */
  async #prepull(): Promise<void> {
    for (const result of await this.#images.prepull(this.config.prepull)) {
      if (result.ok) this.#logger.info('pre-pulled an image', { image: result.ref });
      else
        this.#logger.warn('cannot pre-pull an image', {
          image: result.ref,
          code: result.error.code,
          error: result.error.message,
        });
    }
  }

  /** Removes least recently used built images beyond the retention limits, sparing running steps'. */
  async #pruneImages(): Promise<void> {
    if (this.#engine === undefined) return;
    const inUse = new Set<string>();
    for (const held of this.#held.values()) {
      const image = held.run?.image;
      if (image !== undefined) inUse.add(image);
    }
    try {
      const removed = await this.#images.pruneBuiltImages(inUse);
      if (removed.length > 0)
        this.#logger.info('removed built images beyond the retention limits', { images: removed });
    } catch (error) {
      this.#logger.warn('cannot prune built images', { error: String(error) });
    }
  }

  /** Keeps the newest versions of each tool that no running task uses; refreshes hello's list. */
  async #pruneTools(): Promise<void> {
    const inUse = new Set<string>();
    for (const held of this.#held.values()) {
      const tool = held.journal.task.tool;
      if (held.run !== undefined && tool !== undefined) inUse.add(toolKey(tool.name, tool.version));
    }
    try {
      const removed = await this.#tools.prune(inUse, this.config.toolVersionsKept);
      if (removed.length > 0) this.#logger.info('removed old tool versions', { tools: removed });
      this.#installedTools = await this.#tools.list();
    } catch (error) {
      this.#logger.warn('cannot prune tools', { error: String(error) });
    }
  }

  /** Keeps the package cache under its limit, sparing the packages of tasks still held. */
  async #evictPackages(): Promise<void> {
    const inUse = new Set<string>();
    for (const held of this.#held.values()) {
      if (held.run !== undefined) for (const p of held.journal.task.packages) inUse.add(p.sha256);
    }
    try {
      const removed = await this.#packages.evict(this.config.packageCacheBytes, inUse);
      if (removed.length > 0)
        this.#logger.info('evicted packages from the cache', { count: removed.length });
    } catch (error) {
      this.#logger.warn('cannot evict packages from the cache', { error: String(error) });
    }
  }

  #queueRemove(taskId: string): boolean {
    const index = this.#queue.indexOf(taskId);
    if (index < 0) return false;
    this.#queue.splice(index, 1);
    return true;
  }

  async #forget(taskId: string, held: HeldTask): Promise<void> {
    if (this.#held.get(taskId) !== held) return;
    await held.done;
    this.#held.delete(taskId);
    await held.journal.remove();
    if (this.#held.size === 0) this.#idleCollector.workEnded();
    this.#maybeDrained();
  }

  #maybeDrained(): void {
    if (!this.#draining || this.#drainedSent || this.#held.size > 0 || this.#running > 0) return;
    if (!this.#connection.connected) return;
    this.#drainedSent = this.#connection.send({ type: 'drained' });
    if (this.#drainedSent) {
      this.#logger.info('drained: no task left');
      if (this.config.exitWhenDrained && !this.#exitEmitted) {
        this.#exitEmitted = true;
        this.emit('exit');
      }
    }
  }
}
