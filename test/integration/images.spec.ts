import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CuttleError } from '../../protocol/errors.js';
import {
  DEMO_IMAGE,
  DockerClient,
  DockerUnavailableError,
  ensureDemoImage,
  tarContext,
  translateContainerOptions,
  type StepContainerSpec,
} from '../../images/index.js';
import {
  buildTestImage,
  makeWorkFolder,
  sweepContainers,
  testAgentId,
  TEST_LABEL,
} from '../support/docker.js';

const APPLETS = 'echo seq cat sha256sum base64 printf sed ls id yes head sleep env';

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<CuttleError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CuttleError, `expected a CuttleError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

describe('images: DockerClient against the real engine', function () {
  const client = DockerClient.connect();
  const agentId = testAgentId();
  const otherAgentId = testAgentId();
  const entrypointImage = `cuttle-test-entrypoint:${agentId}`;
  let builtDemo = false;
  let work: { path: string; dispose: () => Promise<void> };

  function spec(overrides: Partial<StepContainerSpec> & { command: string[] }): StepContainerSpec {
    return { image: DEMO_IMAGE, agentId, taskId: 'T-1', workFolder: work.path, ...overrides };
  }

  async function run(overrides: Partial<StepContainerSpec> & { command: string[] }) {
    const id = await client.createStepContainer(spec(overrides));
    await client.start(id);
    const { exitCode } = await client.wait(id);
    return { id, exitCode };
  }

  before(async function () {
    this.timeout(120_000);
    builtDemo = (await ensureDemoImage(client)).built;
    await buildTestImage(client, {
      tag: entrypointImage,
      dockerfileExtra: 'ENTRYPOINT ["/bin/false"]\nCMD ["echo", "from the image CMD"]',
    });
    work = await makeWorkFolder();
  });

  after(async function () {
    this.timeout(120_000);
    await sweepContainers(client, agentId);
    await sweepContainers(client, otherAgentId);
    await client.removeImage(entrypointImage);
    // The demo image is a cache other suites use too; remove it only if this suite made it.
    if (builtDemo) await client.removeImage(DEMO_IMAGE);
    await work?.dispose();
  });

  it('reports the engine version and that API 1.41 has no image mounts', async function () {
    const info = await client.engineInfo();
    assert.match(info.apiVersion, /^1\.\d+$/);
    assert.equal(info.os, 'linux');
    assert.ok(info.version.length > 0);
    if (!info.version.startsWith('20.10')) this.skip();
    assert.equal(info.apiVersion, '1.41');
    assert.equal(info.imageMounts, false);
  });

  it('builds the demo image once, with busybox applets on PATH', async function () {
    assert.deepEqual(await ensureDemoImage(client), { ref: DEMO_IMAGE, built: false });
    const image = await client.imageExists(DEMO_IMAGE);
    assert.ok(image);
    assert.equal(image.entrypoint, null);
    assert.equal(image.cmd, null);
    assert.ok(
      image.env.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'),
    );
    const script = [
      `for a in ${APPLETS}; do command -v "$a" >/dev/null || exit 9; done`,
      '[ "$(stat -c %a /tmp)" = 1777 ] || exit 8',
      'echo "hello $(seq 1 3 | head -n 2 | sed "s/^/n/" | tr "\\n" " ")" > out.txt',
    ].join('\n');
    const { exitCode } = await run({ command: ['/bin/sh', '-c', script] });
    assert.equal(exitCode, 0);
    assert.equal(await readFile(join(work.path, 'out.txt'), 'utf8'), 'hello n1 n2 \n');
  });

  it('overrides the image ENTRYPOINT and CMD and propagates the exit code', async function () {
    const image = await client.imageExists(entrypointImage);
    assert.ok(image);
    assert.deepEqual(image.entrypoint, ['/bin/false']);
    assert.deepEqual(image.cmd, ['echo', 'from the image CMD']);
    const ok = await run({ image: entrypointImage, command: ['/bin/sh', '-c', 'exit 0'] });
    assert.equal(ok.exitCode, 0);
    const three = await run({ image: entrypointImage, command: ['/bin/sh', '-c', 'exit 3'] });
    assert.equal(three.exitCode, 3);
  });

  it('mounts the work folder at the same path as the working directory', async function () {
    await writeFile(
      join(work.path, 'launch.sh'),
      'pwd > pwd.txt\necho from-container > made.txt\n',
    );
    const { exitCode } = await run({ command: ['/bin/sh', join(work.path, 'launch.sh')] });
    assert.equal(exitCode, 0);
    assert.equal(await readFile(join(work.path, 'pwd.txt'), 'utf8'), `${work.path}\n`);
    assert.equal(await readFile(join(work.path, 'made.txt'), 'utf8'), 'from-container\n');
  });

  it('labels the container and passes only the given environment', async function () {
    process.env.CUTTLE_TEST_HOST_SECRET = 'host-secret-value';
    try {
      const { id, exitCode } = await run({
        taskId: 'T-labels',
        env: ['GREETING=hi'],
        command: ['/bin/sh', '-c', 'env > env.txt'],
      });
      assert.equal(exitCode, 0);
      const details = await client.inspectContainer(id);
      assert.ok(details);
      assert.equal(details.agentId, agentId);
      assert.equal(details.taskId, 'T-labels');
      assert.equal(details.running, false);
      assert.equal(details.exitCode, 0);
      const env = await readFile(join(work.path, 'env.txt'), 'utf8');
      assert.match(env, /^GREETING=hi$/m);
      assert.doesNotMatch(env, /host-secret-value|CUTTLE_TEST_HOST_SECRET/);
    } finally {
      delete process.env.CUTTLE_TEST_HOST_SECRET;
    }
  });

  it('lists containers by agent id (and task id), including stopped ones', async function () {
    const exited = await run({ taskId: 'T-list-1', command: ['/bin/true'] });
    const created = await client.createStepContainer(
      spec({ taskId: 'T-list-2', command: ['true'] }),
    );
    const foreign = await client.createStepContainer(
      spec({ agentId: otherAgentId, taskId: 'T-list-1', command: ['true'] }),
    );
    const mine = await client.listContainers({ agentId });
    const ids = mine.map((container) => container.id);
    assert.ok(ids.includes(exited.id) && ids.includes(created), 'own containers listed');
    assert.ok(!ids.includes(foreign), "another agent's container is not listed");
    assert.ok(mine.every((container) => container.agentId === agentId));
    const byTask = await client.listContainers({ agentId, taskId: 'T-list-1' });
    assert.deepEqual(
      byTask.map((container) => [container.id, container.taskId, container.state]),
      [[exited.id, 'T-list-1', 'exited']],
    );
    const theirs = await client.listContainers({ agentId: otherAgentId });
    assert.deepEqual(
      theirs.map((container) => [container.id, container.running]),
      [[foreign, false]],
    );
  });

  it('treats stopping, killing or removing a finished or gone container as done', async function () {
    const { id } = await run({ command: ['/bin/true'] });
    await client.stop(id, { timeoutSeconds: 1 });
    await client.kill(id, 'SIGKILL');
    await client.remove(id);
    await client.remove(id);
    await client.stop(id, { timeoutSeconds: 1 });
    await client.kill(id, 'SIGTERM');
    assert.equal(await client.inspectContainer(id), undefined);
    await rejectsWithCode(client.wait(id), 'internal');
  });

  it('kills a running step and reports the signal as exit code 137', async function () {
    const id = await client.createStepContainer(spec({ command: ['sleep', '60'] }));
    await client.start(id);
    const details = await client.inspectContainer(id);
    assert.equal(details?.running, true);
    await client.kill(id, 'SIGKILL');
    assert.deepEqual(await client.wait(id), { exitCode: 137 });
  });

  it('maps a missing image to image-not-found', async function () {
    assert.equal(await client.imageExists('cuttle-no-such-image:nope'), undefined);
    await rejectsWithCode(
      client.createStepContainer(spec({ image: 'cuttle-no-such-image:nope', command: ['true'] })),
      'image-not-found',
    );
  });

  it('reports what the engine refused at create in its words, not as a missing image', async function () {
    // Engine 20.10 checks a --network only at start, a --link target at create (not with a
    // 404: the 404 mapping itself is tested against a fake engine in docker-client.spec.ts).
    const options = translateContainerOptions('--link cuttle-no-such-container:peer', {
      workFolder: work.path,
    });
    const error = await rejectsWithCode(
      client.createStepContainer(spec({ command: ['true'] }), options),
      'internal',
    );
    assert.match(error.message, /cuttle-no-such-container/);
  });

  it('maps a failing build to image-build-failed with the engine message', async function () {
    const lines: string[] = [];
    const context = await tarContext([
      { name: 'Dockerfile', content: 'FROM scratch\nRUN ["/no/such/binary"]\n' },
    ]);
    const tag = `cuttle-test-broken:${agentId}`;
    const error = await rejectsWithCode(
      client.buildImage({
        tag,
        context,
        labels: { [TEST_LABEL]: '1' },
        onOutput: (line) => lines.push(line),
      }),
      'image-build-failed',
    );
    assert.match(error.message, /no such file or directory/);
    assert.ok(
      lines.some((line) => /^Step 2\/\d+ : RUN/.test(line)),
      lines.join('\n'),
    );
    assert.equal(await client.imageExists(tag), undefined);
  });

  it('maps an unreachable registry to image-pull-failed', async function () {
    await rejectsWithCode(client.pullImage('127.0.0.1:1/cuttle/nothing:1'), 'image-pull-failed');
  });
});

describe('images: unreachable engine', function () {
  const saved = process.env.DOCKER_HOST;
  afterEach(function () {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  it('gives docker-unavailable for a socket that does not exist', async function () {
    const client = DockerClient.connect({ socketPath: '/nonexistent.sock' });
    const error = await rejectsWithCode(client.engineInfo(), 'docker-unavailable');
    assert.ok(error instanceof DockerUnavailableError);
    assert.match(error.message, /\/nonexistent\.sock/);
    assert.ok(error.cause !== undefined);
    await rejectsWithCode(client.listContainers({ agentId: 'a' }), 'docker-unavailable');
    await rejectsWithCode(client.imageExists('x'), 'docker-unavailable');
  });

  it('honours DOCKER_HOST (unix and tcp)', async function () {
    process.env.DOCKER_HOST = 'unix:///nonexistent.sock';
    await rejectsWithCode(DockerClient.connect().engineInfo(), 'docker-unavailable');
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:1';
    const error = await rejectsWithCode(DockerClient.connect().engineInfo(), 'docker-unavailable');
    assert.match(error.message, /127\.0\.0\.1:1.*ECONNREFUSED/);
  });

  it('rejects a malformed DOCKER_HOST with docker-unavailable', function () {
    process.env.DOCKER_HOST = 'tcp://[not-a-host';
    assert.throws(() => DockerClient.connect(), DockerUnavailableError);
  });
});
