/**
 * One task from `preparing` to its `result`: image, work folder, container, output, cleanup.
 * Every outcome ends in exactly one `result` event, and the container and work folder are removed
 * whatever happened.
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import {
  asCuttleError,
  CuttleError,
  isErrorCode,
  MAX_LOG_LINE_BYTES,
  type LogLevel,
  type Outcome,
  type PullPolicy,
  type Task,
  type TaskState,
} from '../protocol/index.js';
import {
  createWorkFolder,
  isInsideFolder,
  removeWorkFolder,
  resolveContainerFile,
  type AgentHome,
  type BindMount,
  type PackageCache,
  type ToolStore,
  type JournalInput,
  type TaskJournal,
} from '../workspace/index.js';
import {
  imageRequestSecrets,
  removeFolderContentsThroughContainer,
  checkOptionsPolicy,
  translateContainerOptions,
  type DockerClient,
  type ImageRequest,
  type ImageResolver,
  type ResolveHooks,
  type OptionsPolicy,
  type TranslatedOptions,
} from '../images/index.js';
import { bothSettled } from './settle.js';
import type { Logger } from './logger.js';
import type { TaskMetrics } from './metrics.js';
import { Masker } from './masker.js';
import { OutputTail } from './output-tail.js';
import { StdoutInterpreter, type ArtifactMark } from './stdout-interpreter.js';
import { stepOutputFiles, writeStepFiles } from './step-files.js';
import { type OutputCheckpoint, type RunInfo, type StepEnded } from './run-state.js';
import { TaskLog, type Advance, type OutputStream } from './task-log.js';
import type { TaskOutbox } from './task-outbox.js';

/** How long a step whose engine went away waits for it to come back (live-restore). */
const ENGINE_RETURN_MS = 30_000;
/** How often the engine is asked whether it is still there while a step runs. */
const ENGINE_WATCH_MS = 2_000;

/** SIGTERM first, SIGKILL this much later (PROTOCOL.md section 3). */
const STOP_GRACE_SECONDS = 10;

export interface TaskRunContext {
  task: Task;
  journal: TaskJournal;
  outbox: TaskOutbox;
  home: AgentHome;
  /** undefined when the engine cannot be reached. */
  docker: DockerClient | undefined;
  hostExecution: boolean;
  maxArtifactBytes: number;
  /** Pulls and builds the step's image; one per agent, shared by its tasks. */
  images: ImageResolver;
  optionsPolicy: OptionsPolicy;
  tools: ToolStore;
  metrics?: TaskMetrics;
  /** A container that could not be removed (engine away): the agent removes it later. */
  leftover: (containerId: string) => void;
  /** Tool image mounts: asked for by the configuration, possible on this engine, and where from. */
  imageMounts: {
    wanted: boolean;
    supported: boolean;
    repository: string;
    pullPolicy: PullPolicy;
  };
  packages: { cache: PackageCache; fetch: (sha256: string, size: number) => Promise<void> };
  logger: Logger;
}

type StopReason = 'cancelled' | 'timeout';

export class TaskRun {
  readonly #ctx: TaskRunContext;
  readonly #masker = new Masker();
  readonly #log: TaskLog;
  #stopReason: StopReason | undefined;
  #stopStep: (() => Promise<void>) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #workFolder: string | undefined;
  /** The output files followed, open until the result (see OutputTail.run). */
  readonly #tails: OutputTail[] = [];
  #containerId: string | undefined;
  /** The step's container was seen to exit (so nothing writes to the work folder any more). */
  #exited = false;
  /** The step's image, once known (also used to clean up files it wrote as root). */
  #image: string | undefined;
  /** Aborts a pull or build in progress when the task is cancelled or times out. */
  readonly #abort = new AbortController();
  #preparedAt = 0;
  /** How far the step's output is journalled (see run-state.ts); written with every event. */
  #output: { out: number; err: number; open: OutputStream | undefined } = {
    out: 0,
    err: 0,
    open: undefined,
  };
  #interpreter: StdoutInterpreter | undefined;
  #restored: { level: LogLevel; artifacts: ArtifactMark[] } | undefined;
  /** How many of the marked artifacts were collected, in order (in every checkpoint). */
  #collected = 0;
  /** What run.json says, once written: how the step ended is added to it before the cleanup. */
  #runInfo: RunInfo | undefined;
  /** A log line that waits for a long line left open before a restart to end (see resume). */
  #pendingLog: Promise<void> = Promise.resolve();

  constructor(ctx: TaskRunContext) {
    this.#ctx = ctx;
    for (const variable of ctx.task.variables)
      if (variable.sensitive) this.#masker.add(variable.value);
    if (ctx.task.container !== undefined) {
      for (const secret of imageRequestSecrets(ctx.task.container)) this.#masker.add(secret);
    }
    // What the step asked to mask before the agent restarted.
    for (const value of ctx.journal.masks) this.#masker.add(value);
    this.#log = new TaskLog((body, advance) => this.#append(body, advance), this.#masker);
  }

  /** The step's image once resolved (built images in use are kept by retention). */
  get image(): string | undefined {
    return this.#image;
  }

  get taskId(): string {
    return this.#ctx.task.taskId;
  }

  /** The server cancelled the task. Safe to call at any time, and more than once. */
  cancel(): void {
    this.#stop('cancelled');
  }

  async run(): Promise<void> {
    this.#preparedAt = Date.now();
    await this.#state('preparing');
    await this.#finish(() => this.#execute());
  }

  /**
   * Takes over a step that outlived a restart of the agent: its container (running, or exited
   * meanwhile) and its output from where the journal ends, no line lost and none repeated.
   */
  async resume(info: RunInfo, checkpoint: OutputCheckpoint | undefined): Promise<void> {
    this.#preparedAt = info.preparedAt;
    this.#workFolder = info.workFolder;
    if (info.kind === 'container') {
      this.#containerId = info.containerId;
      this.#image = info.image;
    }
    this.#runInfo = info;
    this.#restore(checkpoint);
    if (info.ended !== undefined) {
      // The step ended and its output was read: a line still open (a journal of an agent before
      // this one) ends now, not after output that will never come.
      await this.#log.endOpenLine();
      await this.#log.system(
        'warning',
        'the agent restarted while it cleaned up after this step; it finishes the cleanup and reports the outcome it had recorded',
      );
      await this.#conclude(info.ended);
      return;
    }
    // With a long line of the step left open, this line waits for its end: nothing of the task may
    // come between the pieces of a line (PROTOCOL.md section 4), and only the step's output, read
    // again below, can end it.
    this.#pendingLog = this.#log
      .system(
        'warning',
        'the agent restarted while this step ran; it took the step over and resumes its output where it stopped',
      )
      .catch(() => undefined);
    await this.#finish(() => this.#reattach(info, checkpoint));
  }

  /** Runs `execute` under the task's timeout, then cleans up and appends the one `result`. */
  async #finish(execute: () => Promise<number>): Promise<void> {
    await this.#conclude(await this.#outcome(execute));
  }

  /** Runs `execute` under the task's timeout and says how the step ended. */
  async #outcome(execute: () => Promise<number>): Promise<StepEnded> {
    const { task } = this.#ctx;
    let outcome: Outcome = 'error';
    let exitCode: number | null = null;
    let failure: CuttleError | undefined;
    if (task.timeoutMs !== undefined) {
      const left = Math.max(0, this.#preparedAt + task.timeoutMs - Date.now());
      this.#timer = setTimeout(() => this.#stop('timeout'), left);
    }
    try {
      exitCode = await execute();
      outcome = this.#stopReason ?? (exitCode === 0 ? 'success' : 'failure');
    } catch (error) {
      if (this.#stopReason !== undefined) outcome = this.#stopReason;
      else failure = asCuttleError(error);
    } finally {
      clearTimeout(this.#timer);
    }
    // A line the step's output left open (reading it failed, or a restarted agent could not take
    // the step over) ends here; the lines below would otherwise wait for it for good.
    await this.#log.endOpenLine().catch(() => undefined);
    await this.#pendingLog;
    if (failure !== undefined) {
      await this.#log.system('error', failure.message).catch(() => undefined);
    }
    if (this.#stopReason !== undefined && outcome !== 'success') {
      outcome = this.#stopReason;
      await this.#log
        .system(
          'warning',
          this.#stopReason === 'timeout'
            ? `the step exceeded its timeout of ${task.timeoutMs ?? 0} ms and was stopped`
            : 'the step was cancelled',
        )
        .catch(() => undefined);
    }
    return {
      outcome,
      exitCode,
      ...(outcome === 'error' && failure !== undefined
        ? {
            error: {
              code: isErrorCode(failure.code) ? failure.code : 'internal',
              // The whole message is in the log above; the result (one frame) gets its start.
              message: this.#masker.mask(failure.message).slice(0, 64 * 1024),
            },
          }
        : {}),
    };
  }

  /** Records how the step ended, cleans up and appends the one `result`. */
  async #conclude(ended: StepEnded): Promise<void> {
    if (this.#runInfo !== undefined && this.#runInfo.ended === undefined) {
      // Without run.json nothing was started that a restarted agent could take over.
      this.#runInfo = { ...this.#runInfo, ended };
      await this.#ctx.journal.writeRunInfo(this.#runInfo).catch(() => undefined);
    }
    await this.#cleanup();
    try {
      await this.#append({
        kind: 'result',
        ...ended,
        durationMs: Date.now() - this.#preparedAt,
      });
    } finally {
      // The output files are gone from the folder; the kernel frees them at this close, which is
      // not waited for (see OutputTail.run).
      void Promise.all(this.#tails.splice(0).map((tail) => tail.release()));
    }
    await this.#ctx.journal.forgetVariables().catch(() => undefined);
  }

  /** Runs the step and returns its exit code; throws CuttleError for anything that stops it. */
  async #execute(): Promise<number> {
    const { task, docker } = this.#ctx;
    if (task.container === undefined) {
      if (!this.#ctx.hostExecution) {
        throw new CuttleError(
          'host-execution-forbidden',
          'this task has no container and this worker does not run steps on its host; give the task a container, or set allowHostExecution: true in the agent configuration',
        );
      }
      return this.#runOnHost();
    }
    // Asked at the moment it is needed: the engine may have come back (or gone) since the start.
    if (docker === undefined || !(await docker.isReachable())) {
      throw new CuttleError(
        'docker-unavailable',
        'this worker cannot reach its Docker engine (DOCKER_HOST or /var/run/docker.sock); start the engine, or give the agent access to its socket',
      );
    }
    // The work folder and the step's files do not depend on the image: they are written while the
    // image, packages and tool are made ready. Both settle before a failure is thrown, so that
    // cleanup finds the folder (docs/performance.md, round 7).
    const [{ image, tool }, { workFolder, files }] = await bothSettled(
      this.#prepareImage(docker, task.container),
      this.#createWorkFolder().then(async (folder) => ({
        workFolder: folder,
        files: await writeStepFiles(folder, task),
      })),
    );
    const packagesFolder = await this.#placePackages(workFolder);
    const options = await this.#containerOptions(workFolder);
    this.#throwIfStopped();
    const containerId = await docker.createStepContainer(
      {
        image,
        agentId: this.#ctx.home.agentId,
        taskId: task.taskId,
        workFolder,
        command: ['/bin/sh', files.launcher],
        // Packages are hard links into the shared cache: read-only, even for a root step.
        extraBinds: [
          ...(packagesFolder === undefined ? [] : [`${packagesFolder}:${packagesFolder}:ro`]),
          ...(tool?.kind === 'folder' ? [`${tool.folder}:${TOOL_MOUNT}:ro`] : []),
        ],
        ...(tool?.kind === 'image'
          ? { imageMounts: [{ image: tool.image, target: TOOL_MOUNT }] }
          : {}),
        env: tool === undefined ? [] : [`CUTTLE_TOOL_HOME=${TOOL_MOUNT}`],
      },
      options,
    );
    this.#containerId = containerId;
    const optionMounts = (options?.bindMounts ?? []).map((m) => ({
      hostPath: m.hostPath,
      containerPath: m.containerPath,
    }));
    // Before the step starts: a restarted agent finds its container through this.
    this.#runInfo = {
      kind: 'container',
      containerId,
      workFolder,
      image,
      preparedAt: this.#preparedAt,
      mounts: optionMounts,
    };
    await this.#ctx.journal.writeRunInfo(this.#runInfo);
    this.#ctx.logger.debug('step container created', { taskId: task.taskId, containerId });
    this.#stopStep = () => docker.stop(containerId, { timeoutSeconds: STOP_GRACE_SECONDS });
    await this.#state('running');
    const mounts: BindMount[] = [
      { hostPath: workFolder, containerPath: workFolder },
      ...optionMounts,
    ];
    return this.#follow(files, mounts, async () => {
      // A cancel or timeout while the container was made: the script never starts.
      this.#throwIfStopped();
      await docker.start(containerId);
      if (this.#stopReason !== undefined) await this.#stopStep?.();
      return this.#waitForExit(docker, containerId);
    });
  }

  /** The step's image (resolved, checked for the tool's C library), its packages and its tool. */
  async #prepareImage(
    docker: DockerClient,
    container: ImageRequest,
  ): Promise<{ image: string; tool: ToolPlacement | undefined }> {
    const { task } = this.#ctx;
    const resolved = await this.#ctx.images.resolve(
      container,
      this.#resolveHooks(),
      this.#abort.signal,
    );
    const image = resolved.ref;
    this.#image = image;
    if (task.tool?.libc !== undefined) await this.#ctx.images.checkToolLibc(image, task.tool);
    this.#throwIfStopped();
    const summary = resolved.summary ?? (await docker.imageExists(image));
    if (summary !== undefined && (summary.entrypoint !== null || summary.cmd !== null)) {
      await this.#log.system(
        'warning',
        `the image ${image} defines ${[summary.entrypoint !== null ? `ENTRYPOINT ${JSON.stringify(summary.entrypoint)}` : '', summary.cmd !== null ? `CMD ${JSON.stringify(summary.cmd)}` : ''].filter(Boolean).join(' and ')}; cuttle runs the step script instead`,
      );
    }
    await this.#fetchPackages();
    return { image, tool: await this.#installTool() };
  }

  /**
   * The step's exit code. If the engine goes away meanwhile (stopped, restarted without
   * live-restore), the step ends with docker-unavailable and says so, not with a socket error.
   */
  async #waitForExit(docker: DockerClient, containerId: string): Promise<number> {
    const engineUp = (): Promise<boolean> => docker.isReachable();
    let exitCode: number;
    // A wait whose engine exits is not always told (after a quick restart the connection can
    // just stay silent): the container is inspected every few seconds too, and whichever sees
    // the end first wins; an engine that does not answer abandons the wait.
    let watchdog: NodeJS.Timeout | undefined;
    try {
      const waiting = docker.wait(containerId);
      waiting.catch(() => undefined);
      exitCode = (
        await Promise.race([
          waiting,
          new Promise<{ exitCode: number }>((resolve, reject) => {
            watchdog = setInterval(() => {
              docker.inspectContainer(containerId).then(
                (container) => {
                  if (container === undefined) {
                    reject(
                      new CuttleError('internal', "the step's container vanished while it ran"),
                    );
                  } else if (!container.running && container.exitCode !== null) {
                    resolve({ exitCode: container.exitCode });
                  }
                },
                (error: unknown) =>
                  reject(
                    new CuttleError('docker-unavailable', 'the Docker engine does not answer', {
                      cause: error,
                    }),
                  ),
              );
            }, ENGINE_WATCH_MS);
          }),
        ])
      ).exitCode;
    } catch (error) {
      if (await engineUp()) throw error;
      // An engine restarted with live-restore keeps its containers running: wait a while for it
      // to come back, and if the step's container is still there, wait for it again.
      for (
        let waited = 0;
        waited < ENGINE_RETURN_MS && this.#stopReason === undefined;
        waited += 500
      ) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        if (!(await engineUp())) continue;
        const container = await docker.inspectContainer(containerId);
        if (container?.running === true) {
          await this.#log.system(
            'warning',
            'the Docker engine restarted while the step ran; the step survived it and is followed again',
          );
          return this.#waitForExit(docker, containerId);
        }
        break;
      }
      throw new CuttleError(
        'docker-unavailable',
        "the Docker engine went away while the step ran; the step's outcome is unknown",
        { cause: error },
      );
    } finally {
      clearInterval(watchdog);
    }
    // An engine that shuts down stops its containers first (SIGTERM, then SIGKILL) and answers
    // for a moment longer: a step killed by a signal waits up to 3 s to see whether the engine
    // goes, since then the exit is the engine's doing, not the script's.
    if ((exitCode === 143 || exitCode === 137) && this.#stopReason === undefined) {
      let up = true;
      for (let i = 0; i < 12 && up; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        up = await engineUp();
      }
      if (!up) {
        throw new CuttleError(
          'docker-unavailable',
          `the Docker engine went away while the step ran and stopped it (exit code ${exitCode}); the step did not finish`,
        );
      }
    }
    this.#exited = true;
    return exitCode;
  }

  /** The second half of resume(): wait for the container found again, following its output. */
  async #reattach(info: RunInfo, checkpoint: OutputCheckpoint | undefined): Promise<number> {
    const { docker } = this.#ctx;
    if (info.kind === 'host') {
      throw new CuttleError(
        'internal',
        'the agent restarted while this step ran on the worker host; a step without a container cannot survive an agent restart, so its outcome is unknown',
      );
    }
    if (docker === undefined) {
      throw new CuttleError(
        'docker-unavailable',
        'the agent restarted while this step ran and cannot reach the Docker engine to take it over',
      );
    }
    const container = await docker.inspectContainer(info.containerId);
    if (container === undefined) {
      throw new CuttleError(
        'internal',
        `the step's container ${info.containerId.slice(0, 12)} vanished while the agent was down; the step's outcome is unknown`,
      );
    }
    const containerId = info.containerId;
    this.#stopStep = () => docker.stop(containerId, { timeoutSeconds: STOP_GRACE_SECONDS });
    const files = stepOutputFiles(info.workFolder);
    // run.json from an agent before 0.1.0's mounts record: the options translated again, which
    // fails if a file they name is gone; then artifacts come from the work folder only.
    const optionMounts =
      info.mounts ??
      (await this.#containerOptions(info.workFolder, false).then(
        (options) => options?.bindMounts ?? [],
        () => [],
      ));
    const mounts: BindMount[] = [
      { hostPath: info.workFolder, containerPath: info.workFolder },
      ...optionMounts.map((m) => ({ hostPath: m.hostPath, containerPath: m.containerPath })),
    ];
    this.#ctx.logger.info('took over a step after a restart', {
      taskId: this.taskId,
      containerId,
      state: container.state,
      resumeAt: checkpoint === undefined ? 0 : `${checkpoint.out}/${checkpoint.err}`,
    });
    return this.#follow(files, mounts, async () => {
      // Created but never started: the agent stopped between the two.
      if (container.state === 'created') {
        this.#throwIfStopped();
        await docker.start(containerId);
      }
      if (this.#stopReason !== undefined) await this.#stopStep?.();
      return this.#waitForExit(docker, containerId);
    });
  }

  /**
   * The step's `Octopus.Action.Container.Options`, translated as the docker CLI would and checked
   * against the worker's policy (options-invalid / options-forbidden fail the task).
   */
  async #containerOptions(
    workFolder: string,
    report = true,
  ): Promise<TranslatedOptions | undefined> {
    const text = findVariable(this.#ctx.task, CONTAINER_OPTIONS_VARIABLE);
    if (text === undefined || text.trim() === '') return undefined;
    const translated = translateContainerOptions(text, { workFolder });
    checkOptionsPolicy(translated, this.#ctx.optionsPolicy);
    if (report)
      for (const warning of translated.warnings) await this.#log.system('warning', warning);
    return translated;
  }

  async #runOnHost(): Promise<number> {
    const tool = await this.#installTool();
    const toolFolder = tool?.kind === 'folder' ? tool.folder : undefined;
    if (findVariable(this.#ctx.task, CONTAINER_OPTIONS_VARIABLE)?.trim()) {
      await this.#log.system(
        'warning',
        `${CONTAINER_OPTIONS_VARIABLE} is ignored: this step runs on the worker host, not in a container`,
      );
    }
    await this.#fetchPackages();
    const workFolder = await this.#createWorkFolder();
    const files = await writeStepFiles(workFolder, this.#ctx.task);
    await this.#placePackages(workFolder);
    this.#runInfo = { kind: 'host', workFolder, preparedAt: this.#preparedAt };
    await this.#ctx.journal.writeRunInfo(this.#runInfo);
    this.#throwIfStopped();
    await this.#state('running');
    return this.#follow(
      files,
      [{ hostPath: workFolder, containerPath: workFolder }],
      () =>
        new Promise<number>((resolve, reject) => {
          const child = spawn('/bin/sh', [files.launcher], {
            cwd: workFolder,
            stdio: 'ignore',
            env:
              toolFolder === undefined
                ? process.env
                : { ...process.env, CUTTLE_TOOL_HOME: toolFolder },
          });
          this.#stopStep = () => {
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_SECONDS * 1000).unref();
            return Promise.resolve();
          };
          child.once('error', (error) =>
            reject(
              new CuttleError('internal', `cannot start /bin/sh on the host: ${error.message}`, {
                cause: error,
              }),
            ),
          );
          child.once('exit', (code, signal) =>
            resolve(code ?? (signal === null ? 1 : 128 + signalNumber(signal))),
          );
        }),
    );
  }

  /**
   * Follows stdout and stderr while `execute` runs, reads what is left, then collects the
   * artifacts the script marked from the folders mounted from the worker.
   */
  async #follow(
    files: { stdout: string; stderr: string },
    mounts: readonly BindMount[],
    execute: () => Promise<number>,
  ): Promise<number> {
    const maxPendingBytes = MAX_LOG_LINE_BYTES;
    const stdout = new OutputTail(files.stdout, { maxPendingBytes, position: this.#output.out });
    const stderr = new OutputTail(files.stderr, { maxPendingBytes, position: this.#output.err });
    this.#tails.push(stdout, stderr);
    const interpreter = new StdoutInterpreter(
      this.#log,
      this.#masker,
      (end) => this.#advance({ stream: 'stdout', end, open: false }),
      (value) => this.#ctx.journal.addMasks([value]),
      this.#restored,
    );
    this.#interpreter = interpreter;
    // A stream read to its end ends a line it left open (a restart can leave one whose end never
    // comes); else the other stream would wait for it for good.
    const reading = Promise.all([
      stdout.run(interpreter).then(() => this.#log.endOpenLine('stdout')),
      stderr.run(this.#log.sink('stderr', 'info')).then(() => this.#log.endOpenLine('stderr')),
    ]);
    let exitCode: number;
    try {
      exitCode = await execute();
    } finally {
      stdout.finish();
      stderr.finish();
      await reading;
    }
    const marks = interpreter.artifacts;
    if (marks.length > this.#collected) {
      await this.#state('collecting');
      // After a restart, those already reported are not collected again.
      for (const [index, mark] of marks.entries()) {
        if (index >= this.#collected) await this.#collect(mark, mounts, index + 1);
      }
    }
    return exitCode;
  }

  /**
   * One marked artifact: checked, kept beside the journal, then reported (its blob goes first).
   * The event that reports it, or the warning that it was not collected, carries `collected` in
   * its checkpoint.
   */
  async #collect(
    mark: ArtifactMark,
    mounts: readonly BindMount[],
    collected: number,
  ): Promise<void> {
    const resolved = await resolveContainerFile(mark.path, mounts);
    if (!resolved.ok) {
      this.#collected = collected;
      await this.#log.system(
        'warning',
        `artifact ${mark.name} (${mark.path}) was not collected: ${resolved.reason}`,
      );
      return;
    }
    if (resolved.size > this.#ctx.maxArtifactBytes) {
      this.#collected = collected;
      await this.#log.system(
        'warning',
        `artifact ${mark.name} (${mark.path}) was not collected: it is ${resolved.size} bytes, over this worker's limit of ${this.#ctx.maxArtifactBytes} (maxArtifactBytes)`,
      );
      return;
    }
    const kept = await this.#ctx.journal.keepArtifact(resolved.hostPath, {
      mayLink:
        this.#workFolder !== undefined && isInsideFolder(resolved.hostPath, this.#workFolder),
    });
    this.#collected = collected;
    await this.#append({
      kind: 'artifact',
      name: mark.name,
      path: mark.path,
      size: kept.size,
      sha256: kept.sha256,
    });
  }

  /** How a pull or build reports to the task: states, progress events, system lines. */
  #resolveHooks(): ResolveHooks {
    return {
      state: (state) => this.#state(state),
      progress: (activity, message, percent) =>
        this.#append({
          kind: 'progress',
          activity,
          message,
          ...(percent === undefined ? {} : { percent }),
        }),
      log: (level, lines) => this.#log.system(level, ...lines),
    };
  }

  /**
   * The task's tool (Calamari-like), installed once in <home>/Tools/<name>/<version>: its bundle
   * is fetched like a package only when that version is missing, unpacked and checked.
   */
  async #installTool(): Promise<ToolPlacement | undefined> {
    const { tool } = this.#ctx.task;
    if (tool === undefined) return undefined;
    const { tools, imageMounts } = this.#ctx;
    if (imageMounts.wanted && imageMounts.supported && this.#ctx.task.container !== undefined) {
      // The tool as a read-only image mount: pulled and cached like any image, no transfer.
      const image = `${imageMounts.repository}/${tool.name.toLowerCase()}:${tool.version}`;
      const { ref } = await this.#ctx.images.resolve(
        { image, pullPolicy: imageMounts.pullPolicy },
        this.#resolveHooks(),
        this.#abort.signal,
      );
      return { kind: 'image', image: ref };
    }
    if (imageMounts.wanted && !imageMounts.supported) {
      await this.#log.system(
        'warning',
        `this Docker engine cannot mount images (Engine API 1.48 or later is needed); the tool ${tool.name} ${tool.version} is transferred and unpacked instead`,
      );
    }
    const folder = await tools.ensure(tool.name, tool.version, async () => {
      await this.#append({
        kind: 'progress',
        activity: 'transfer',
        message: `fetching tool ${tool.name} ${tool.version}`,
        percent: 0,
      });
      await this.#ctx.packages.fetch(tool.bundle.sha256, tool.bundle.size);
      return this.#ctx.packages.cache.pathOf(tool.bundle.sha256);
    });
    return { kind: 'folder', folder };
  }

  /** Fetches the packages the cache lacks; each transfer emits a progress event. */
  async #fetchPackages(): Promise<void> {
    const { packages } = this.#ctx;
    for (const pkg of this.#ctx.task.packages) {
      if (await packages.cache.has(pkg.sha256)) continue;
      await this.#append({
        kind: 'progress',
        activity: 'transfer',
        message: `fetching package ${pkg.name} (${pkg.size} bytes)`,
        percent: 0,
      });
      await packages.fetch(pkg.sha256, pkg.size);
      await this.#append({
        kind: 'progress',
        activity: 'transfer',
        message: `fetched package ${pkg.name}`,
        percent: 100,
      });
      this.#throwIfStopped();
    }
  }

  /** Places the task's packages at $PWD/packages/<name>; returns that folder, if any. */
  async #placePackages(workFolder: string): Promise<string | undefined> {
    const { packages } = this.#ctx.task;
    if (packages.length === 0) return undefined;
    let folder = '';
    for (const pkg of packages) {
      const target = await this.#ctx.packages.cache.place(pkg.sha256, workFolder, pkg.name);
      folder = dirname(target);
    }
    return folder;
  }

  async #createWorkFolder(): Promise<string> {
    this.#workFolder = await createWorkFolder(this.#ctx.home.workDir, this.#ctx.task.taskId);
    return this.#workFolder;
  }

  async #cleanup(): Promise<void> {
    if (this.#containerId === undefined && this.#workFolder === undefined) return;
    await this.#state('cleaning').catch(() => undefined);
    const { logger, task } = this.#ctx;
    const folder = this.#workFolder;
    // Once the step has exited nothing writes to its folder, and the folder is all that is read
    // afterwards: both go at once, so the folder's removal adds no time of its own. A container
    // that may still run (the step failed to start or to stop) is removed, and so killed, first.
    const removingContainer = this.#removeContainer();
    if (!this.#exited) await removingContainer;
    await Promise.all([
      removingContainer,
      folder === undefined
        ? undefined
        : this.#removeWorkFolder(folder).catch(async (error: unknown) => {
            logger.warn('cannot remove the step folder', {
              taskId: task.taskId,
              error: String(error),
            });
            await this.#log
              .system('warning', `cannot remove the step folder ${folder}`)
              .catch(() => undefined);
          }),
    ]);
  }

  /** Removes the step container (killing it if it still runs); a failure is the agent's to retry. */
  async #removeContainer(): Promise<void> {
    const { docker, logger, task } = this.#ctx;
    const containerId = this.#containerId;
    if (containerId === undefined || docker === undefined) return;
    await docker.remove(containerId).catch((error: unknown) => {
      logger.warn('cannot remove the step container now; it is removed when the engine answers', {
        taskId: task.taskId,
        containerId,
        error: String(error),
      });
      this.#ctx.leftover(containerId);
    });
  }

  /**
   * Removes the step folder; files the step wrote as another user (root, typically) that the
   * agent may not delete are removed through a short-lived container of the step's image.
   */
  async #removeWorkFolder(folder: string): Promise<void> {
    try {
      await removeWorkFolder(folder);
      return;
    } catch (error) {
      const { docker } = this.#ctx;
      if (docker === undefined || this.#image === undefined) throw error;
      this.#ctx.logger.debug('removing the step folder through a container', {
        taskId: this.taskId,
      });
      const exitCode = await removeFolderContentsThroughContainer(docker, {
        image: this.#image,
        folder,
        agentId: this.#ctx.home.agentId,
        taskId: this.taskId,
      });
      if (exitCode !== 0)
        this.#ctx.logger.warn('the cleanup container failed', { taskId: this.taskId, exitCode });
      await removeWorkFolder(folder);
    }
  }

  #stop(reason: StopReason): void {
    if (this.#stopReason !== undefined) return;
    this.#stopReason = reason;
    this.#abort.abort();
    void this.#stopStep?.().catch((error: unknown) => {
      this.#ctx.logger.warn('cannot stop the step', { taskId: this.taskId, error: String(error) });
    });
  }

  #throwIfStopped(): void {
    if (this.#stopReason !== undefined) {
      throw new CuttleError(
        'internal',
        `the task was ${this.#stopReason === 'timeout' ? 'timed out' : 'cancelled'} before its step started`,
      );
    }
  }

  async #state(state: TaskState): Promise<void> {
    await this.#append({ kind: 'state', state });
  }

  async #append(body: JournalInput, advance?: Advance): Promise<void> {
    await this.#ctx.outbox.room();
    // The checkpoint is taken in the journal's write order, so it never counts output whose
    // events are not yet on disk.
    const written = await this.#ctx.journal.append(body, () => {
      if (advance !== undefined) this.#advance(advance);
      return this.#checkpoint();
    });
    this.#ctx.metrics?.journalled(body, written);
    this.#ctx.outbox.pump();
  }

  #advance(advance: Advance): void {
    const key = advance.stream === 'stdout' ? 'out' : 'err';
    this.#output[key] = Math.max(this.#output[key], advance.end);
    if (advance.open) this.#output.open = advance.stream;
    else if (this.#output.open === advance.stream) this.#output.open = undefined;
  }

  #checkpoint(): OutputCheckpoint | undefined {
    // Before the output is read, a resumed step still has its restored state to carry on.
    const state = this.#interpreter ?? this.#restored;
    if (state === undefined) return undefined;
    const { out, err, open } = this.#output;
    const { level, artifacts } = state;
    return {
      out,
      err,
      ...(open === undefined ? {} : { open }),
      ...(level === 'info' ? {} : { level }),
      ...(artifacts.length === 0 ? {} : { marks: artifacts }),
      ...(this.#collected === 0 ? {} : { collected: this.#collected }),
    };
  }

  #restore(checkpoint: OutputCheckpoint | undefined): void {
    if (checkpoint === undefined) return;
    this.#output = { out: checkpoint.out, err: checkpoint.err, open: checkpoint.open };
    this.#restored = { level: checkpoint.level ?? 'info', artifacts: checkpoint.marks ?? [] };
    this.#collected = checkpoint.collected ?? 0;
    if (checkpoint.open !== undefined) {
      // stderr is always read at `info`; stdout at the level its service messages last set.
      const level = checkpoint.open === 'stdout' ? this.#restored.level : 'info';
      const end = checkpoint.open === 'stdout' ? checkpoint.out : checkpoint.err;
      this.#log.resumeOpenLine(checkpoint.open, level, end);
    }
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return numbers[signal] ?? 0;
}

export const CONTAINER_OPTIONS_VARIABLE = 'Octopus.Action.Container.Options';

/** A task variable by name; names match case-insensitively (PROTOCOL.md section 3). */
function findVariable(task: Task, name: string): string | undefined {
  const wanted = name.toLowerCase();
  return task.variables.find((v) => v.name.toLowerCase() === wanted)?.value;
}

/** A tool unpacked in <home>/Tools, or an image mounted as it is. */
type ToolPlacement = { kind: 'folder'; folder: string } | { kind: 'image'; image: string };

/** Where the task's tool is, read-only, in the step container (PROTOCOL.md section 7). */
const TOOL_MOUNT = '/cuttle/tool';
