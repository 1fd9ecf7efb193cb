/**
 * Taking a step over after a restart (TaskRun.resume), started on the state that an agent killed
 * at one chosen moment leaves behind: a real journal, run.json and output files, and a real
 * container in the state the kill left it in. These moments (a container created and not yet
 * started, a cleanup under way, an artifact being hashed) last milliseconds, too short to hit with
 * a real SIGKILL reliably; agent-restart.spec.ts kills real agent processes for the long ones.
 * The server side is a connection that is down (the events stay in the journal, where the test
 * reads them). Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import winston from 'winston';
import { stepOutputFiles } from '../../agent/step-files.js';
import { TaskOutbox } from '../../agent/task-outbox.js';
import { TaskRun } from '../../agent/task-run.js';
import type { OutputCheckpoint, RunInfo } from '../../agent/run-state.js';
import {
  DEFAULT_OPTIONS_POLICY,
  DEMO_IMAGE,
  DockerClient,
  ensureDemoImage,
  ImageResolver,
} from '../../images/index.js';
import { eventSchema, parseTask, type Task, type TaskEvent } from '../../protocol/index.js';
import { AgentHome, PackageCache, TaskJournal, ToolStore } from '../../workspace/index.js';
import { makeTempDir, uniqueTaskId, withTimeout } from '../support/agent-harness.js';
import { sweepContainers } from '../support/docker.js';

interface Stage {
  home: AgentHome;
  task: Task;
  journal: TaskJournal;
  workFolder: string;
  run: TaskRun;
}

/** A service message line as the script helpers write it (attribute values in base64). */
function serviceMessage(name: string, attributes: Record<string, string>): string {
  const parts = Object.entries(attributes).map(
    ([key, value]) => `${key}='${Buffer.from(value).toString('base64')}'`,
  );
  return `##octopus[${name} ${parts.join(' ')}]\n`;
}

/** Events in the journal after `afterSeq`, as the server would read them. */
async function eventsAfter(journal: TaskJournal, afterSeq: number): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  for (let seq = afterSeq + 1; seq <= journal.lastSeq; seq++) {
    events.push(v.parse(eventSchema, JSON.parse((await journal.read(seq)).toString('utf8'))));
  }
  return events;
}

/**
 * Before the kill: the first piece of a long stdout line, `start`, was journalled with a checkpoint
 * saying the line is open; returns that checkpoint.
 */
async function journalOpenLine(s: Stage, start: string): Promise<OutputCheckpoint> {
  const checkpoint: OutputCheckpoint = { out: start.length, err: 0, open: 'stdout' };
  await s.journal.append(
    { kind: 'log', stream: 'stdout', level: 'info', lines: [start], partial: true },
    () => checkpoint,
  );
  return checkpoint;
}

describe('taking a step over after a restart, at moments too short for a real kill', function () {
  this.timeout(60_000);
  const docker = DockerClient.connect();
  let root: string;
  let home: AgentHome;

  before(async () => {
    await ensureDemoImage(docker);
    root = await makeTempDir('takeover');
    home = await AgentHome.open(root);
  });
  const journals: TaskJournal[] = [];
  afterEach(async () => {
    for (const journal of journals.splice(0)) await journal.close();
  });
  after(async () => {
    await sweepContainers(docker, home.agentId);
    await rm(root, { recursive: true, force: true });
  });

  /** A task's journal and work folder (output files with `stdout`), and a TaskRun for it. */
  async function stage(stdout: string): Promise<Stage> {
    const task = parseTask({
      type: 'task',
      taskId: uniqueTaskId('takeover'),
      script: { syntax: 'sh', body: 'true' },
      container: { image: DEMO_IMAGE, pullPolicy: 'never' },
    });
    const journal = await TaskJournal.create(home.journalDir, task);
    journals.push(journal);
    const workFolder = join(home.workDir, task.taskId);
    const files = stepOutputFiles(workFolder);
    await mkdir(join(files.stdout, '..'), { recursive: true });
    await writeFile(files.stdout, stdout);
    await writeFile(files.stderr, '');
    const outbox = new TaskOutbox(
      journal,
      {
        connected: false,
        sendText: () => Promise.reject(new Error('not connected')),
        sendBlob: () => Promise.reject(new Error('not connected')),
      },
      () => undefined,
    );
    const run = new TaskRun({
      task,
      journal,
      outbox,
      home,
      docker,
      hostExecution: false,
      maxArtifactBytes: 1024 * 1024,
      images: new ImageResolver(
        docker,
        { allowedImages: [], allowedPullPolicies: [] },
        { agentId: home.agentId },
      ),
      optionsPolicy: DEFAULT_OPTIONS_POLICY,
      tools: new ToolStore(home.toolsDir),
      leftover: () => undefined,
      imageMounts: { wanted: false, supported: false, repository: 'unused', pullPolicy: 'never' },
      packages: {
        cache: new PackageCache(home.packagesDir),
        fetch: () => Promise.reject(new Error('no packages in these tests')),
      },
      logger: winston.createLogger({ silent: true }),
    });
    return { home, task, journal, workFolder, run };
  }

  /** A container of the task as the agent creates it, run to its exit unless `start` is false. */
  async function container(
    s: Stage,
    script: string,
    options: { start?: boolean; binds?: string[] } = {},
  ): Promise<string> {
    const start = options.start ?? true;
    const id = await docker.createStepContainer({
      image: DEMO_IMAGE,
      agentId: s.home.agentId,
      taskId: s.task.taskId,
      workFolder: s.workFolder,
      command: ['/bin/sh', '-c', script],
      extraBinds: options.binds ?? [],
      env: [],
    });
    if (start) {
      await docker.start(id);
      await docker.wait(id);
    }
    return id;
  }

  function runInfo(s: Stage, containerId: string, extra: Partial<RunInfo> = {}): RunInfo {
    return {
      kind: 'container',
      containerId,
      workFolder: s.workFolder,
      image: DEMO_IMAGE,
      preparedAt: Date.now(),
      ...extra,
    };
  }

  async function resume(s: Stage, info: RunInfo, checkpoint?: OutputCheckpoint): Promise<void> {
    await s.journal.writeRunInfo(info);
    await withTimeout(s.run.resume(info, checkpoint), 30_000, 'the taken-over step to end');
  }

  it('ends a long line that was open at the restart before anything else of the task', async () => {
    const start = 'a'.repeat(150_000);
    const s = await stage(`${start}${'b'.repeat(50_000)} end\nnext\n`);
    // Before the kill: the line's first piece was journalled, and the checkpoint says it is open.
    const checkpoint = await journalOpenLine(s, start);
    await resume(s, runInfo(s, await container(s, 'true')), checkpoint);

    const events = await eventsAfter(s.journal, 1);
    const logs = events.filter((e) => e.kind === 'log');
    // The line's end comes first (nothing may come between its pieces), then the warning and the
    // next line in whichever order they took the log.
    assert.equal(events[0]?.kind === 'log' && events[0].lines[0], `${'b'.repeat(50_000)} end`);
    assert.equal(events[0]?.kind === 'log' && (events[0].partial ?? false), false);
    assert.deepEqual(
      logs
        .slice(1)
        .map((e) => `${e.stream}: ${e.lines.join('|').slice(0, 40)}`)
        .sort(),
      ['stdout: next', 'system: the agent restarted while this step ran;'],
    );
    const result = events.at(-1);
    assert.equal(result?.kind === 'result' ? result.outcome : result?.kind, 'success');
  });

  it('ends a long line whose stream wrote nothing more, and reads the other stream', async () => {
    const start = 'a'.repeat(150_000);
    // The line's first piece reached the end of the file; after the restart only stderr writes.
    const s = await stage(start);
    await writeFile(stepOutputFiles(s.workFolder).stderr, 'an error line\n');
    const checkpoint = await journalOpenLine(s, start);
    await resume(s, runInfo(s, await container(s, 'true')), checkpoint);
    const events = await eventsAfter(s.journal, 1);
    assert.deepEqual(
      events[0]?.kind === 'log' && [events[0].stream, events[0].lines, events[0].partial],
      ['stdout', [''], undefined],
    );
    assert.ok(events.some((e) => e.kind === 'log' && e.lines.includes('an error line')));
    const result = events.at(-1);
    assert.equal(result?.kind === 'result' ? result.outcome : result?.kind, 'success');
  });

  it('records a line it ended as closed, and reports a recorded outcome with a line left open', async () => {
    const start = 'a'.repeat(150_000);
    // A takeover that finds no container ends the open line; its checkpoint must say so, or a
    // restart during its cleanup would wait for the line's end again.
    const s = await stage(start);
    const checkpoint = await journalOpenLine(s, start);
    const gone = await container(s, 'true');
    await docker.remove(gone);
    await resume(s, runInfo(s, gone), checkpoint);
    assert.deepEqual(s.journal.checkpoint, { out: start.length, err: 0 });
    // A journal left open with the outcome recorded (an agent before this one): reported.
    const t = await stage(start);
    await journalOpenLine(t, start);
    await resume(t, runInfo(t, gone, { ended: { outcome: 'failure', exitCode: 3 } }), checkpoint);
    const result = (await eventsAfter(t.journal, 1)).at(-1);
    assert.deepEqual(result?.kind === 'result' ? [result.outcome, result.exitCode] : result, [
      'failure',
      3,
    ]);
  });

  it('does not report again an artifact reported before the restart', async () => {
    const s = await stage('');
    const a = join(s.workFolder, 'a.txt');
    const b = join(s.workFolder, 'b.txt');
    await writeFile(a, 'first');
    await writeFile(b, 'second');
    const stdout =
      serviceMessage('createArtifact', { path: a, name: 'a.txt' }) +
      serviceMessage('createArtifact', { path: b, name: 'b.txt' });
    await writeFile(stepOutputFiles(s.workFolder).stdout, stdout);
    const marks = [
      { path: a, name: 'a.txt' },
      { path: b, name: 'b.txt' },
    ];
    // Killed while b was hashed: a's event is journalled, with the count in its checkpoint.
    const checkpoint: OutputCheckpoint = { out: stdout.length, err: 0, marks, collected: 1 };
    await s.journal.append({ kind: 'state', state: 'collecting' });
    const kept = await s.journal.keepArtifact(a, { mayLink: true });
    await s.journal.append({ kind: 'artifact', name: 'a.txt', path: a, ...kept }, () => checkpoint);
    await resume(s, runInfo(s, await container(s, 'true')), checkpoint);

    const events = await eventsAfter(s.journal, 0);
    assert.deepEqual(
      events.filter((e) => e.kind === 'artifact').map((e) => e.name),
      ['a.txt', 'b.txt'],
    );
    const result = events.at(-1);
    assert.equal(result?.kind === 'result' ? result.outcome : result?.kind, 'success');
  });

  it('reports the outcome recorded before the cleanup when the container is already gone', async () => {
    const s = await stage('done\n');
    const id = await container(s, 'exit 3');
    await docker.remove(id);
    await resume(s, runInfo(s, id, { ended: { outcome: 'failure', exitCode: 3 } }), {
      out: 5,
      err: 0,
    });
    const events = await eventsAfter(s.journal, 0);
    const result = events.at(-1);
    assert.deepEqual(result?.kind === 'result' ? [result.outcome, result.exitCode] : result, [
      'failure',
      3,
    ]);
    await assert.rejects(access(s.workFolder), 'the cleanup still removed the work folder');
  });

  it('does not start the script of a task cancelled while its container was made', async () => {
    const s = await stage('');
    // Outside the work folder, which the cleanup removes.
    const markers = await makeTempDir('takeover-markers');
    const marker = join(markers, 'started');
    try {
      const id = await container(s, `touch ${marker}; sleep 5`, {
        start: false,
        binds: [`${markers}:${markers}`],
      });
      s.run.cancel();
      await resume(s, runInfo(s, id));
      const result = (await eventsAfter(s.journal, 0)).at(-1);
      assert.equal(result?.kind === 'result' ? result.outcome : result?.kind, 'cancelled');
      assert.equal(await docker.inspectContainer(id), undefined, 'the container is removed');
      await assert.rejects(access(marker), 'the script never ran');
    } finally {
      await rm(markers, { recursive: true, force: true });
    }
  });
});
