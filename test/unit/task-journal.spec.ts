import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFile,
  link,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as v from 'valibot';
import { eventSchema, parseTask } from '../../protocol/index.js';
import { JournalLeftoverError, TaskJournal, WorkspaceError } from '../../workspace/index.js';

const task = parseTask({
  type: 'task',
  taskId: 'T-1',
  script: { syntax: 'sh', body: 'true' },
  variables: [{ name: 'Password', value: 'hunter2', sensitive: true }],
});

/** A task with every kind of secret a task file holds: variables, a feed's, a Git URL's. */
const secretTask = parseTask({
  type: 'task',
  taskId: 'T-1',
  script: { syntax: 'sh', body: 'true' },
  variables: [
    { name: 'Password', value: 'hunter2', sensitive: true },
    { name: 'Region', value: 'eu-west-9' },
  ],
  container: {
    git: { url: 'https://builder:gh-t0ken@git.example.com/team/app.git', ref: 'main' },
    feed: { registry: 'registry.example.com', username: 'puller', password: 'feed-pa55' },
  },
});
const SECRETS = ['hunter2', 'eu-west-9', 'gh-t0ken', 'feed-pa55'];

describe('TaskJournal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('numbers events from 1 and reads back the exact text that was written', async () => {
    const journal = await TaskJournal.create(dir, task);
    const first = await journal.append({ kind: 'state', state: 'preparing' });
    const second = await journal.append({
      kind: 'log',
      stream: 'stdout',
      level: 'info',
      lines: ['héllo'],
    });
    assert.equal(first.seq, 1);
    assert.equal(second.seq, 2);
    assert.equal((await journal.read(2)).toString('utf8'), second.bytes.toString('utf8'));
    assert.equal(journal.sizeOf(2), second.bytes.length);
    await assert.rejects(journal.read(3), WorkspaceError);
    await journal.close();
  });

  it('writes lines given joined as the log event of the split lines, escaped or not', async () => {
    const journal = await TaskJournal.create(dir, task);
    // ASCII, tabs and quotes included, takes the WebAssembly encoder; é the JSON.stringify fallback.
    const texts = ['one\n\ntwo', 'a\tb\nc', 'say "hi"\n', 'héllo\nwörld', ''];
    for (const [index, text] of texts.entries()) {
      const entry = await journal.append(
        { kind: 'log-text', stream: 'stderr', level: 'warning', text },
        () => ({ err: index }),
      );
      const sent = v.parse(eventSchema, JSON.parse(entry.bytes.toString('utf8')));
      assert.deepEqual(sent, {
        type: 'event',
        taskId: 'T-1',
        seq: index + 1,
        time: sent.time,
        kind: 'log',
        stream: 'stderr',
        level: 'warning',
        lines: text.split('\n'),
      });
      assert.equal(entry.lineBytes, Buffer.byteLength(text.split('\n').join('')), text);
      assert.deepEqual(await journal.read(index + 1), entry.bytes);
    }
    await journal.close();
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.equal(loaded?.lastSeq, texts.length, 'every line on disk is a whole event');
    assert.deepEqual(loaded?.checkpoint, { err: texts.length - 1 });
    await loaded?.close();
  });

  it('keeps its files readable by the agent user alone', async () => {
    const journal = await TaskJournal.create(dir, task);
    assert.equal((await stat(join(journal.dir, 'task.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(journal.dir, 'events.ndjson'))).mode & 0o777, 0o600);
    await journal.close();
  });

  it('survives a restart, and drops a torn last record', async () => {
    const journal = await TaskJournal.create(dir, task);
    await journal.append({ kind: 'state', state: 'preparing' });
    const kept = await journal.append({ kind: 'state', state: 'running' });
    await journal.close();
    await appendFile(
      join(journal.dir, 'events.ndjson'),
      '{"type":"event","taskId":"T-1","seq":3,"ti',
    );
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.ok(loaded);
    assert.equal(loaded.lastSeq, 2);
    assert.equal((await loaded.read(2)).toString('utf8'), kept.bytes.toString('utf8'));
    const next = await loaded.append({ kind: 'state', state: 'cleaning' });
    assert.equal(next.seq, 3);
    assert.equal((await loaded.read(3)).toString('utf8'), next.bytes.toString('utf8'));
    assert.equal(loaded.finished, false);
    await loaded.close();
  });

  // A write cut short (disk full) leaves torn bytes past the journal's end; a journal opened with
  // O_APPEND would put the next events after them, where offsets and the next load do not look.
  for (const reopened of ['loaded', 'compacted'] as const) {
    it(`writes at its own end over torn bytes, when ${reopened}`, async () => {
      const created = await TaskJournal.create(dir, task);
      const texts: string[] = [];
      for (let i = 1; i <= 4; i++) {
        const entry = await created.append({
          kind: 'log',
          stream: 'stdout',
          level: 'info',
          lines: [`${i}`],
        });
        texts.push(entry.bytes.toString('utf8'));
      }
      let journal = created;
      if (reopened === 'loaded') {
        await created.close();
        const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
        assert.ok(loaded);
        journal = loaded;
      } else {
        await created.compact(2, 0);
      }
      // Longer than the events appended next, and without a line end, as a torn write is.
      await appendFile(
        join(journal.dir, 'events.ndjson'),
        `{"type":"event","taskId":"T-1","seq":5,${'x'.repeat(500)}`,
      );
      for (let i = 5; i <= 7; i++) {
        const entry = await journal.append({
          kind: 'log',
          stream: 'stdout',
          level: 'info',
          lines: [`${i}`],
        });
        texts.push(entry.bytes.toString('utf8'));
        assert.equal(
          (await journal.read(i)).toString('utf8'),
          texts[i - 1],
          `event ${i} read back`,
        );
      }
      await journal.close();
      const [again] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
      assert.ok(again);
      assert.equal(again.lastSeq, 7, 'no event is cut off at the next load');
      const first = reopened === 'loaded' ? 1 : 3;
      for (let seq = first; seq <= 7; seq++) {
        assert.equal(
          (await again.read(seq)).toString('utf8'),
          texts[seq - 1],
          `event ${seq} after the load`,
        );
      }
      await again.close();
    });
  }

  it('cuts a write that came back short, and goes on at its end', async function () {
    this.timeout(30_000);
    const created = await TaskJournal.create(dir, task);
    const first = await created.append({ kind: 'state', state: 'running' });
    await created.close();
    // Under the file size limit, a 4 MiB event is written short, as on a full disk.
    const script = `
      import { TaskJournal } from ${JOURNAL_MODULE};
      const [journal] = await TaskJournal.loadAll(${JSON.stringify(dir)}, (error) => { throw error; });
      const lines = Array.from({ length: 64 }, () => 'x'.repeat(64 * 1024));
      const big = await journal.append({ kind: 'log', stream: 'stdout', level: 'info', lines }).then(
        () => 'written', (error) => error.code);
      const next = await journal.append({ kind: 'state', state: 'collecting' });
      await journal.close();
      console.log(JSON.stringify({ big, next: next.bytes.toString('utf8') }));`;
    const stdout = await runWithFileSizeLimit(script);
    const result = v.parse(v.object({ big: v.string(), next: v.string() }), JSON.parse(stdout));
    assert.equal(result.big, 'workspace-error', 'the big event was not written');
    const onDisk = await readFile(join(dir, 'T-1', 'events.ndjson'), 'utf8');
    assert.equal(onDisk, `${first.bytes.toString('utf8')}\n${result.next}\n`, 'no torn bytes');
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.equal(loaded?.lastSeq, 2);
    await loaded?.close();
  });

  it('knows a finished task, and forgets its variables once the step ended', async () => {
    const journal = await TaskJournal.create(dir, task);
    await journal.append({ kind: 'result', outcome: 'success', exitCode: 0, durationMs: 5 });
    assert.equal(journal.finished, true);
    await assert.rejects(journal.append({ kind: 'state', state: 'running' }), WorkspaceError);
    await journal.forgetVariables();
    const onDisk = await readFile(join(journal.dir, 'task.json'), 'utf8');
    assert.ok(!onDisk.includes('hunter2'), 'no secret stays on disk after the step');
    await journal.close();
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.equal(loaded?.finished, true);
    await loaded?.remove();
    await assert.rejects(stat(join(dir, 'T-1')));
  });

  it('removes what an interrupted create or removal left, and says so', async () => {
    const good = await TaskJournal.create(dir, task);
    await good.close();
    // A removal killed part way: the task file gone, a sensitive variable event and an artifact left.
    const removing = await TaskJournal.create(dir, { ...task, taskId: 'T-2' });
    await removing.append({ kind: 'variable', name: 'Token', value: 'hunter2', sensitive: true });
    await writeFile(join(dir, 'report.txt'), 'hunter2');
    await removing.keepArtifact(join(dir, 'report.txt'), { mayLink: false });
    await removing.close();
    await rm(join(removing.dir, 'task.json'));
    await rm(join(dir, 'report.txt'));
    // A removal killed after its first step, which moves the folder out of the way.
    await mkdir(join(dir, '~removing-T-3-k1'));
    await writeFile(join(dir, '~removing-T-3-k1', 'events.ndjson'), 'hunter2');
    // A creation killed before the task file was renamed into place.
    await mkdir(join(dir, 'T-4'));
    await writeFile(join(dir, 'T-4', 'task.json.tmp'), JSON.stringify({ ...task, taskId: 'T-4' }));
    const notices: WorkspaceError[] = [];
    const loaded = await TaskJournal.loadAll(dir, (error) => notices.push(error));
    assert.deepEqual(
      loaded.map((j) => j.taskId),
      ['T-1'],
    );
    assert.deepEqual(await readdir(dir), ['T-1'], 'nothing else is left');
    assert.deepEqual(notices.map((notice) => notice.path).sort(), [
      join(dir, 'T-2'),
      join(dir, 'T-4'),
      join(dir, '~removing-T-3-k1'),
    ]);
    for (const notice of notices) {
      assert.ok(notice instanceof JournalLeftoverError && notice.removed, notice.message);
    }
    for (const journal of loaded) await journal.close();
  });

  it('removes temporary files a crash left inside a journal', async () => {
    const journal = await TaskJournal.create(dir, task);
    await journal.append({ kind: 'state', state: 'running' });
    await journal.close();
    const strays = ['task.json.tmp', 'run.json.tmp', 'events.ndjson.tmp'];
    for (const name of strays) await writeFile(join(journal.dir, name), 'hunter2');
    await mkdir(join(journal.dir, 'artifacts'));
    await writeFile(join(journal.dir, 'artifacts', 'incoming-1-2-abc'), 'hunter2');
    const notices: WorkspaceError[] = [];
    const [loaded] = await TaskJournal.loadAll(dir, (error) => notices.push(error));
    assert.equal(loaded?.lastSeq, 1);
    assert.deepEqual((await readdir(journal.dir)).sort(), [
      'artifacts',
      'events.ndjson',
      'task.json',
    ]);
    assert.deepEqual(await readdir(join(journal.dir, 'artifacts')), []);
    assert.equal(notices.length, 1);
    assert.ok(notices[0] instanceof JournalLeftoverError && notices[0].removed);
    await loaded?.close();
  });

  it('leaves nothing behind when it cannot be created (disk full)', async function () {
    this.timeout(30_000);
    // The task file's temporary copy is written short: 4 MiB of variables, over the limit.
    const script = `
      import { parseTask } from ${JSON.stringify(new URL('../../protocol/index.ts', import.meta.url).pathname)};
      import { TaskJournal } from ${JOURNAL_MODULE};
      const task = parseTask({ type: 'task', taskId: 'T-1', script: { syntax: 'sh', body: 'true' },
        variables: [{ name: 'Password', value: 'hunter2'.repeat(600_000), sensitive: true }] });
      const outcome = await TaskJournal.create(${JSON.stringify(dir)}, task).then(
        () => 'created', (error) => error.code);
      console.log(JSON.stringify(outcome));`;
    assert.equal(JSON.parse(await runWithFileSizeLimit(script)), 'workspace-error');
    assert.deepEqual(await readdir(dir), [], 'no folder, and no task file holding the variables');
  });

  it('removes itself: no folder of the task is left', async () => {
    const journal = await TaskJournal.create(dir, task);
    await journal.append({ kind: 'state', state: 'running' });
    await journal.remove();
    assert.deepEqual(await readdir(dir), []);
  });

  it('copies an artifact it may not link, so rewriting the source later does not change it', async () => {
    const journal = await TaskJournal.create(dir, task);
    // A file in a folder bind-mounted from the worker: a later task may rewrite it in place (`>`).
    const source = join(dir, 'report.txt');
    await writeFile(source, 'first run');
    const kept = await journal.keepArtifact(source, { mayLink: false });
    await writeFile(source, 'second run, in place');
    const path = journal.artifactPath(kept.sha256);
    assert.equal(await readFile(path, 'utf8'), 'first run');
    assert.equal(kept.sha256, createHash('sha256').update('first run').digest('hex'));
    assert.equal(kept.size, 'first run'.length);
    assert.notEqual((await stat(path)).ino, (await stat(source)).ino);
    await journal.close();
  });

  it('links an artifact it may link, unless the file has other names', async () => {
    const journal = await TaskJournal.create(dir, task);
    // A file of the step's own work folder, removed after the step: linked, not copied.
    const own = join(dir, 'own.txt');
    await writeFile(own, 'own');
    const linked = await journal.keepArtifact(own, { mayLink: true });
    assert.equal((await stat(journal.artifactPath(linked.sha256))).ino, (await stat(own)).ino);
    // The same inode is reachable through another name, which someone else may write through.
    const shared = join(dir, 'shared.txt');
    await writeFile(shared, 'shared');
    await link(shared, join(dir, 'elsewhere.txt'));
    const copied = await journal.keepArtifact(shared, { mayLink: true });
    assert.notEqual(
      (await stat(journal.artifactPath(copied.sha256))).ino,
      (await stat(shared)).ino,
    );
    await journal.close();
  });

  it("forgets the variables, the feed and the Git URL's credentials once the step ended", async () => {
    const journal = await TaskJournal.create(dir, secretTask);
    await journal.append({ kind: 'result', outcome: 'success', exitCode: 0, durationMs: 5 });
    await journal.forgetVariables();
    const onDisk = await readFile(join(journal.dir, 'task.json'), 'utf8');
    for (const secret of SECRETS) assert.ok(!onDisk.includes(secret), `${secret} is not on disk`);
    // What was built is still said.
    assert.equal(journal.task.container?.git?.url, 'https://git.example.com/team/app.git');
    assert.ok(onDisk.includes('https://git.example.com/team/app.git'));
    await journal.close();
  });

  it("takes all of the Git URL's user information and its query, and leaves the rest as it is", async () => {
    const cases: [string, string][] = [
      ['https://ghp_0nly@github.com/o/r.git', 'https://github.com/o/r.git'],
      ['https://u:p@ss@host.example/r', 'https://host.example/r'],
      ['ssh://git:pw@host.example:2222/r.git', 'ssh://host.example:2222/r.git'],
      ['git@github.com:o/r.git', 'git@github.com:o/r.git'],
      ['https://host.example/r?who=a@b#c@d', 'https://host.example/r#c@d'],
      ['https://host.example/r.git?private_token=t0ken', 'https://host.example/r.git'],
      ['https://host.example/r.git#main:dir', 'https://host.example/r.git#main:dir'],
    ];
    for (const [index, [url, expected]] of cases.entries()) {
      const journal = await TaskJournal.create(dir, {
        ...secretTask,
        taskId: `T-${index}`,
        container: { pullPolicy: 'always', git: { url, dockerfile: 'Dockerfile', context: '.' } },
      });
      await journal.forgetVariables();
      assert.equal(journal.task.container?.git?.url, expected, url);
      await journal.close();
    }
  });

  it('strips a task file a kill left with its secrets after the result, when loading it', async () => {
    const journal = await TaskJournal.create(dir, secretTask);
    await journal.append({ kind: 'state', state: 'running' });
    const result = await journal.append({
      kind: 'result',
      outcome: 'success',
      exitCode: 0,
      durationMs: 5,
    });
    await journal.close(); // killed before forgetVariables()
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.ok(loaded);
    const onDisk = await readFile(join(dir, 'T-1', 'task.json'), 'utf8');
    for (const secret of SECRETS) assert.ok(!onDisk.includes(secret), `${secret} is not on disk`);
    assert.deepEqual(loaded.task.variables, []);
    assert.equal(loaded.finished, true);
    assert.equal((await loaded.read(2)).toString('utf8'), result.bytes.toString('utf8'));
    await loaded.close();
  });

  it('keeps the values a step asked to mask until the step ended, for a restarted agent', async () => {
    const journal = await TaskJournal.create(dir, task);
    await journal.addMasks(['m4sked-one']);
    await journal.addMasks(['m4sked-two', 'm4sked-one', '']);
    assert.deepEqual(journal.masks, ['m4sked-one', 'm4sked-two']);
    await journal.close(); // killed while the step ran
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.deepEqual(loaded?.masks, ['m4sked-one', 'm4sked-two']);
    await loaded?.forgetVariables();
    assert.deepEqual(loaded?.masks, []);
    const files = await readdir(join(dir, 'T-1'));
    assert.ok(!files.includes('masks.json'), `${files.join(', ')} holds no masked value`);
    await loaded?.close();
  });

  it('drops the masked values of a task a kill left after its result, when loading it', async () => {
    const journal = await TaskJournal.create(dir, task);
    await journal.addMasks(['m4sked-one']);
    await journal.append({ kind: 'result', outcome: 'success', exitCode: 0, durationMs: 5 });
    await journal.close(); // killed before forgetVariables()
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.deepEqual(loaded?.masks, []);
    assert.ok(!(await readdir(join(dir, 'T-1'))).includes('masks.json'));
    await loaded?.close();
  });

  it('keeps the secrets of a task still to run, when loading it', async () => {
    const journal = await TaskJournal.create(dir, secretTask);
    await journal.append({ kind: 'state', state: 'running' });
    await journal.close();
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.deepEqual(loaded?.task, secretTask);
    await loaded?.close();
  });

  it('reports an unreadable journal without failing the others', async () => {
    const good = await TaskJournal.create(dir, task);
    await good.close();
    const broken = await TaskJournal.create(dir, { ...task, taskId: 'T-2' });
    await broken.close();
    await appendFile(join(broken.dir, 'task.json'), 'garbage');
    const errors: WorkspaceError[] = [];
    const loaded = await TaskJournal.loadAll(dir, (error) => errors.push(error));
    assert.deepEqual(
      loaded.map((j) => j.taskId),
      ['T-1'],
    );
    assert.equal(errors.length, 1);
    for (const journal of loaded) await journal.close();
  });

  it('keeps a checkpoint with its event, and sends the event without it', async () => {
    const journal = await TaskJournal.create(dir, task);
    const entry = await journal.append({ kind: 'state', state: 'running' }, () => ({ out: 10 }));
    await journal.append({ kind: 'state', state: 'collecting' });
    assert.equal((await journal.read(1)).toString('utf8'), entry.bytes.toString('utf8'));
    assert.ok(!entry.bytes.toString('utf8').includes('out'));
    await journal.writeRunInfo({ kind: 'host', workFolder: '/w', preparedAt: 1 });
    await journal.close();
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.deepEqual(loaded?.checkpoint, { out: 10 });
    assert.deepEqual(await loaded?.readRunInfo(), {
      kind: 'host',
      workFolder: '/w',
      preparedAt: 1,
    });
    await loaded?.close();
  });

  it('reads events from disk while it compacts, before and after the files are swapped', async () => {
    const journal = await TaskJournal.create(dir, task);
    // 20 MiB of events: more than the journal keeps in memory (8 MiB), so the oldest are read
    // from the file, as an outbox that fell behind reads them.
    const line = 'x'.repeat(100 * 1024);
    const texts: string[] = [];
    for (let i = 1; i <= 200; i++) {
      const entry = await journal.append({
        kind: 'log',
        stream: 'stdout',
        level: 'info',
        lines: [`${i} ${line}`],
      });
      texts.push(entry.bytes.toString('utf8'));
    }
    let compacting = true;
    let reads = 0;
    const failures: unknown[] = [];
    const pending: Promise<void>[] = [];
    // A read of an event that stays (111) and is only on disk, started at every turn of the event
    // loop while the compaction runs, so some start between its steps.
    const readEachTurn = (): void => {
      if (!compacting) return;
      pending.push(
        journal.read(111).then(
          (bytes) => {
            assert.equal(bytes.toString('utf8'), texts[110]);
            reads += 1;
          },
          (error: unknown) => {
            failures.push(error);
          },
        ),
      );
      setImmediate(readEachTurn);
    };
    readEachTurn();
    await journal.compact(110, 0);
    compacting = false;
    await Promise.all(pending);
    assert.deepEqual(failures, []);
    assert.ok(reads > 1, `${reads} reads during the compaction`);
    assert.equal((await journal.read(111)).toString('utf8'), texts[110]);
    await assert.rejects(journal.read(110), WorkspaceError, 'the compaction happened');
    await journal.close();
  });

  it('drops acknowledged events when compacted, and loads the compacted file', async () => {
    const journal = await TaskJournal.create(dir, task);
    const texts: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const entry = await journal.append(
        { kind: 'log', stream: 'stdout', level: 'info', lines: [`line ${i}`] },
        () => ({ out: i }),
      );
      texts.push(entry.bytes.toString('utf8'));
    }
    await journal.compact(6, 0);
    await assert.rejects(journal.read(6), WorkspaceError);
    assert.equal((await journal.read(8)).toString('utf8'), texts[7]);
    assert.equal(journal.lastSeq, 10);
    assert.equal(journal.bytesAfter(6), journal.bytesAfter(0));
    const next = await journal.append({ kind: 'state', state: 'cleaning' });
    assert.equal(next.seq, 11);
    await journal.close();
    const onDisk = await readFile(join(journal.dir, 'events.ndjson'), 'utf8');
    assert.ok(!onDisk.includes('"line 6"') && onDisk.includes('"line 7"'));
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.equal(loaded?.lastSeq, 11);
    assert.equal((await loaded?.read(7))?.toString('utf8'), texts[6]);
    assert.deepEqual(loaded?.checkpoint, { out: 10 });
    await loaded?.close();
  });
});

/**
 * Runs an ES module script under a file size limit (ulimit -f 2048: 1-2 MiB, as blocks are 512 or
 * 1024 bytes), where the kernel writes short past the limit, as on a full disk: Node ignores
 * SIGXFSZ, so the write returns its count and the next one fails with EFBIG. Returns its stdout.
 */
async function runWithFileSizeLimit(script: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    '/bin/sh',
    [
      '-c',
      'ulimit -f 2048 && exec "$0" "$@"',
      process.execPath,
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ],
    { cwd: new URL('../..', import.meta.url).pathname },
  );
  return stdout;
}

const JOURNAL_MODULE = JSON.stringify(
  new URL('../../workspace/index.ts', import.meta.url).pathname,
);
