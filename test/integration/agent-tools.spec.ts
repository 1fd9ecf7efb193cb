/**
 * A task's tool (Calamari-like): transferred only when missing, unpacked, read-only at
 * /cuttle/tool with CUTTLE_TOOL_HOME set; a bundle that would escape its folder fails the task.
 * Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import type { AgentMessage } from '../../protocol/index.js';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tarContext } from '../../images/index.js';
import { join } from 'node:path';
import {
  AgentEnv,
  demoTask,
  eventually,
  makeTempDir,
  streamLines,
  uniqueTaskId,
} from '../support/agent-harness.js';

async function bundle(
  entries: { name: string; content?: string; linkname?: string; mode?: number }[],
): Promise<Buffer> {
  const archive = pack();
  for (const entry of entries) {
    if (entry.linkname !== undefined)
      archive.entry({ name: entry.name, type: 'symlink', linkname: entry.linkname });
    else archive.entry({ name: entry.name, mode: entry.mode ?? 0o644 }, entry.content ?? '');
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive.pipe(createGzip()))
    if (Buffer.isBuffer(chunk)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('agent end to end: tools', function () {
  this.timeout(60_000);
  let env: AgentEnv;
  const requests: string[] = [];
  before(async () => {
    env = await AgentEnv.start();
    env.server.on('agent-message', (message: AgentMessage) => {
      if (message.type === 'blob-request') requests.push(message.sha256);
    });
  });
  after(async () => {
    await env.dispose();
  });
  afterEach(function () {
    env.reportOnFailure(this);
  });

  it('are unpacked once and mounted read-only at /cuttle/tool', async () => {
    const blob = await env.server.addBlob(
      await bundle([
        { name: 'bin/hello', content: '#!/bin/sh\necho "hello from the tool"\n', mode: 0o755 },
      ]),
    );
    const tool = { name: 'Calamari', version: '28.1.0', bundle: blob };
    const script =
      'echo "home=$CUTTLE_TOOL_HOME"\n"$CUTTLE_TOOL_HOME/bin/hello"\nif touch /cuttle/tool/x 2>/dev/null; then echo WRITABLE; else echo read-only; fi';
    for (let run = 0; run < 2; run++) {
      const { handle, result } = await env.run({ ...demoTask(uniqueTaskId('tool'), script), tool });
      assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
      assert.deepEqual(streamLines(handle, 'stdout'), [
        'home=/cuttle/tool',
        'hello from the tool',
        'read-only',
      ]);
    }
    assert.equal(
      requests.filter((r) => r === blob.sha256).length,
      1,
      'the bundle is transferred once',
    );
  });

  it('fail the task with tool-invalid when the bundle would escape its folder', async () => {
    const blob = await env.server.addBlob(
      await bundle([{ name: 'evil', linkname: '/etc/passwd' }]),
    );
    const { result } = await env.run({
      ...demoTask(uniqueTaskId('evil-tool'), 'echo must not run'),
      tool: { name: 'evil', version: '1.0.0', bundle: blob },
    });
    assert.equal(result.outcome, 'error');
    assert.equal(result.error?.code, 'tool-invalid');
  });

  it('fall back to transfer and unpack, with a warning, on an engine that cannot mount images', async () => {
    const mounts = await AgentEnv.start({ agent: { toolImageMounts: true } });
    try {
      const blob = await mounts.server.addBlob(
        await bundle([{ name: 'bin/hi', content: '#!/bin/sh\necho hi\n', mode: 0o755 }]),
      );
      const { handle, result } = await mounts.run({
        ...demoTask(uniqueTaskId('tool-fallback'), '"$CUTTLE_TOOL_HOME/bin/hi"'),
        tool: { name: 'Hi', version: '1.0.0', bundle: blob },
      });
      assert.equal(result.outcome, 'success');
      assert.deepEqual(streamLines(handle, 'stdout'), ['hi']);
      assert.ok(streamLines(handle, 'system').some((l) => l.includes('cannot mount images')));
    } finally {
      await mounts.dispose();
    }
  });

  it('clean up an unpack a crash cut short, keep the newest versions, and list them in hello', async () => {
    const home = await makeTempDir('tools-home');
    const tools = join(home, 'Tools', 'Calamari');
    for (const version of ['1.0.9', '1.0.10', '1.0.2', '0.9.0']) {
      await mkdir(join(tools, version, 'bin'), { recursive: true });
      await writeFile(join(tools, version, 'bin', 'tool'), 'x');
    }
    await mkdir(join(tools, '.incoming-1.1.0-abc123', 'bin'), { recursive: true });
    const hellos: string[][] = [];
    const restarted = await AgentEnv.start({ agent: { home, toolVersionsKept: 2 } });
    try {
      restarted.server.on('hello', (hello) =>
        hellos.push(hello.capabilities.tools.map((t) => `${t.name}@${t.version}`)),
      );
      assert.deepEqual((await readdir(tools)).sort(), ['1.0.10', '1.0.9']);
      restarted.server.disconnectAll();
      await eventually(() => hellos.length > 0, 'a new hello');
      assert.deepEqual(hellos[0], ['Calamari@1.0.9', 'Calamari@1.0.10']);
    } finally {
      await restarted.dispose();
      await rm(home, { recursive: true, force: true });
    }
  });

  it('refuse a glibc tool for a musl image before the step runs (image-incompatible)', async function () {
    const musl = '/lib/x86_64-linux-musl/libc.so';
    const loader = await readFile(musl).catch(() => undefined);
    if (loader === undefined) {
      console.log('      skipped: no musl here (apt-get install musl)');
      this.skip();
    }
    const tag = 'cuttle-test-musl-tools:1';
    await env.docker.buildImage({
      tag,
      labels: { 'dev.cuttle.test': 'musl' },
      context: await tarContext([
        { name: 'Dockerfile', content: 'FROM cuttle-demo:busybox\nCOPY rootfs/ /\n' },
        { name: 'rootfs/lib/ld-musl-x86_64.so.1', content: loader, mode: 0o755 },
      ]),
    });
    try {
      const { handle, result } = await env.run({
        ...demoTask(uniqueTaskId('musl'), 'echo must not run'),
        container: { image: tag, pullPolicy: 'never' },
        tool: {
          name: 'Calamari',
          version: '28.1.0',
          libc: 'glibc',
          bundle: { sha256: 'c'.repeat(64), size: 1 },
        },
      });
      assert.equal(result.outcome, 'error');
      assert.equal(result.error?.code, 'image-incompatible');
      assert.match(result.error?.message ?? '', /musl/);
      assert.ok(!streamLines(handle, 'stdout').includes('must not run'));
    } finally {
      await env.docker.removeImage(tag).catch(() => undefined);
    }
  });
});
