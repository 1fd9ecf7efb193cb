import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CuttleError } from '../../protocol/errors.js';
import {
  AGENT_LABEL,
  DEMO_IMAGE,
  DockerClient,
  ImagePullFailedError,
  ImageResolver,
  OPEN_IMAGE_POLICY,
  ensureDemoImage,
  imageRequestSecrets,
  tarContext,
  type ImageRequest,
} from '../../images/index.js';
import { TEST_LABEL, testAgentId } from '../support/docker.js';
import { recordingHooks, startRegistry, type TestRegistry } from '../support/registry.js';

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

/** A DockerClient whose pull() calls are counted. */
function countingPulls(client: DockerClient): { docker: DockerClient; pulls: () => number } {
  let count = 0;
  const docker = new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (property === 'pull' && typeof value === 'function') {
        return (...args: Parameters<DockerClient['pull']>) => {
          count += 1;
          return target.pull(...args);
        };
      }
      if (typeof value !== 'function') return value;
      const bound: unknown = value.bind(target);
      return bound;
    },
  });
  return { docker, pulls: () => count };
}

describe('images: pulls from a private registry', function () {
  this.timeout(120_000);
  const client = DockerClient.connect();
  const agentId = testAgentId();
  let registry: TestRegistry;
  /** The pushed image: busybox plus a random 3 MiB layer, so a pull downloads real bytes. */
  let image: string;
  const localTag = `cuttle-test-registry:${agentId}`;

  function feed(password?: string): ImageRequest['feed'] {
    return {
      registry: registry.host,
      username: registry.username,
      password: password ?? registry.password,
    };
  }

  function resolver(options: ConstructorParameters<typeof ImageResolver>[3] = {}): ImageResolver {
    return new ImageResolver(
      client,
      OPEN_IMAGE_POLICY,
      { agentId },
      {
        retryInitialMs: 20,
        retryMaxMs: 50,
        progressIntervalMs: 0,
        ...options,
      },
    );
  }

  before(async function () {
    const started = await startRegistry();
    if (typeof started === 'string') {
      console.log(`      skipped: ${started}`);
      this.skip();
    }
    registry = started;
    await ensureDemoImage(client);
    await client.buildImage({
      tag: localTag,
      context: await tarContext([
        { name: 'Dockerfile', content: `FROM ${DEMO_IMAGE}\nCOPY blob /blob\n` },
        { name: 'blob', content: randomBytes(3 * 1024 * 1024) },
      ]),
      labels: { [TEST_LABEL]: '1', [AGENT_LABEL]: agentId },
    });
    image = `${registry.host}/cuttle/tools:${agentId.slice(-12)}`;
    const [repo, tag] = [
      image.slice(0, image.lastIndexOf(':')),
      image.slice(image.lastIndexOf(':') + 1),
    ];
    await client.tagImage(localTag, repo, tag);
    await client.pushImage(image, {
      username: registry.username,
      password: registry.password,
      serveraddress: registry.host,
    });
    // Gone from the engine entirely (both tags), so the first pull downloads every new byte.
    await client.removeImage(image);
    await client.removeImage(localTag);
  });

  after(async function () {
    if (image !== undefined) await client.removeImage(image).catch(() => undefined);
    await client.removeImage(localTag).catch(() => undefined);
    await registry?.dispose();
  });

  it('pulls with the feed credentials, with progress and start and end lines', async function () {
    const { hooks, events, lines } = recordingHooks();
    const request: ImageRequest = { image, feed: feed(), pullPolicy: 'if-not-present' };
    const resolved = await resolver().resolve(request, hooks);
    assert.equal(resolved.ref, image);
    assert.equal(resolved.cached, false);
    assert.match(resolved.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(events[0], { kind: 'state', state: 'pulling' });
    const progress = events.filter((event) => event.kind === 'progress');
    assert.ok(progress.length >= 3, JSON.stringify(progress));
    assert.equal(progress[0]?.kind === 'progress' && progress[0].percent, 0);
    assert.equal(progress.at(-1)?.kind === 'progress' && progress.at(-1)?.percent, 100);
    const middle = progress
      .slice(1, -1)
      .map((event) => (event.kind === 'progress' ? event.percent : -1));
    assert.ok(
      middle.some((percent) => percent !== undefined && percent > 0 && percent < 100),
      JSON.stringify(middle),
    );
    const info = lines('info');
    assert.match(
      info[0] ?? '',
      /^pulling .* \(pull policy if-not-present, with the feed credentials\)$/,
    );
    assert.match(info.at(-1) ?? '', /^pulled .*: digest sha256:[0-9a-f]{64}, \d+\.\d MiB, in /);
    // The password never reaches a hook; the agent masks it with imageRequestSecrets anyway.
    assert.ok(!JSON.stringify(events).includes(registry.password));
    assert.deepEqual(imageRequestSecrets(request), [registry.password]);
  });

  it('uses the cached image for if-not-present and never, without asking the registry', async function () {
    const { docker, pulls } = countingPulls(client);
    const quiet = new ImageResolver(docker, OPEN_IMAGE_POLICY, { agentId });
    for (const pullPolicy of ['if-not-present', 'never'] as const) {
      const { hooks, events } = recordingHooks();
      const resolved = await quiet.resolve({ image, feed: feed(), pullPolicy }, hooks);
      assert.equal(resolved.cached, true);
      assert.match(resolved.digest ?? '', /^sha256:/);
      assert.ok(!events.some((event) => event.kind === 'state'));
    }
    assert.equal(pulls(), 0);
  });

  it('checks the registry with always, and finds the image up to date', async function () {
    const { docker, pulls } = countingPulls(client);
    const { hooks, lines } = recordingHooks();
    const resolved = await new ImageResolver(docker, OPEN_IMAGE_POLICY, { agentId }).resolve(
      { image, feed: feed(), pullPolicy: 'always' },
      hooks,
    );
    assert.equal(pulls(), 1);
    assert.equal(resolved.cached, true);
    assert.match(lines('info').at(-1) ?? '', /already up to date/);
  });

  it('ends with image-not-found for never when the image is absent', async function () {
    const missing = `${registry.host}/cuttle/absent:1`;
    const error = await rejectsWithCode(
      resolver().resolve({ image: missing, pullPolicy: 'never' }, recordingHooks().hooks),
      'image-not-found',
    );
    assert.match(error.message, /pull policy is "never"/);
  });

  it('tells a missing tag (image-not-found) from bad and missing credentials', async function () {
    const missingTag = `${image.slice(0, image.lastIndexOf(':'))}:no-such-tag`;
    const notFound = await rejectsWithCode(
      resolver().resolve(
        { image: missingTag, feed: feed(), pullPolicy: 'always' },
        recordingHooks().hooks,
      ),
      'image-not-found',
    );
    assert.match(notFound.message, /manifest unknown|not found/);

    const fresh = `${image.slice(0, image.lastIndexOf(':'))}:absent-locally`;
    const bad = await rejectsWithCode(
      resolver().resolve(
        { image: fresh, feed: feed('wrong-password'), pullPolicy: 'always' },
        recordingHooks().hooks,
      ),
      'image-pull-failed',
    );
    assert.ok(bad instanceof ImagePullFailedError);
    assert.equal(bad.reason, 'unauthorized');
    assert.match(bad.message, /refused the feed credentials/);
    assert.ok(!bad.message.includes('wrong-password'));

    const none = await rejectsWithCode(
      resolver().resolve({ image: fresh, pullPolicy: 'always' }, recordingHooks().hooks),
      'image-pull-failed',
    );
    assert.ok(none instanceof ImagePullFailedError);
    assert.equal(none.reason, 'unauthorized');
    assert.match(none.message, /requires credentials/);
  });

  it('fails on bad credentials with always even when the image is cached', async function () {
    assert.ok(await client.imageExists(image));
    const error = await rejectsWithCode(
      resolver().resolve(
        { image, feed: feed('wrong-password'), pullPolicy: 'always' },
        recordingHooks().hooks,
      ),
      'image-pull-failed',
    );
    assert.ok(error instanceof ImagePullFailedError && error.reason === 'unauthorized');
  });

  it('pulls once for two tasks that need the same image at the same time', async function () {
    await client.removeImage(image);
    const { docker, pulls } = countingPulls(client);
    const shared = new ImageResolver(
      docker,
      OPEN_IMAGE_POLICY,
      { agentId },
      { progressIntervalMs: 0 },
    );
    const first = recordingHooks();
    const second = recordingHooks();
    const request: ImageRequest = { image, feed: feed(), pullPolicy: 'if-not-present' };
    const [a, b] = await Promise.all([
      shared.resolve(request, first.hooks),
      shared.resolve(request, second.hooks),
    ]);
    assert.equal(pulls(), 1);
    assert.equal(a.digest, b.digest);
    // Whichever asked first started the pull; the other waited for it, and both were told the end.
    const starts = [first, second].map((task) => task.lines('info')[0] ?? '').sort();
    assert.match(starts[0] ?? '', /^pulling .* \(pull policy if-not-present/);
    assert.match(starts[1] ?? '', /^waiting for the pull of .* that another task started$/);
    for (const task of [first, second]) assert.match(task.lines('info').at(-1) ?? '', /^pulled /);
  });

  it('with the registry stopped: retries, then runs the cached image with a warning (always)', async function () {
    await registry.stop();
    try {
      const { hooks, lines } = recordingHooks();
      const resolved = await resolver({ pullAttempts: 3 }).resolve(
        { image, feed: feed(), pullPolicy: 'always' },
        hooks,
      );
      assert.equal(resolved.cached, true);
      assert.match(resolved.digest ?? '', /^sha256:/);
      const retries = lines('info').filter((line) =>
        /retrying in \d+ ms \(attempt [23] of 3\)/.test(line),
      );
      assert.equal(retries.length, 2, lines().join('\n'));
      const warning = lines('warning');
      assert.equal(warning.length, 1);
      assert.match(
        warning[0] ?? '',
        /cannot check the registry .*unreachable.*running with the image already on this worker/,
      );

      // Not cached: the same failure ends the task, saying why.
      const absent = `${registry.host}/cuttle/other:1`;
      const error = await rejectsWithCode(
        resolver({ pullAttempts: 2 }).resolve(
          { image: absent, feed: feed(), pullPolicy: 'always' },
          recordingHooks().hooks,
        ),
        'image-pull-failed',
      );
      assert.ok(error instanceof ImagePullFailedError && error.reason === 'unreachable');
      assert.match(error.message, /could not be reached/);
    } finally {
      await registry.start();
    }
  });

  it('refuses images and pull policies outside the worker policy with image-forbidden', async function () {
    const strict = new ImageResolver(
      client,
      {
        allowedImages: [`${registry.host}/cuttle/**`, '!**:latest'],
        allowedPullPolicies: ['if-not-present', 'never'],
      },
      { agentId },
    );
    const other = await rejectsWithCode(
      strict.resolve(
        { image: 'docker.io/library/debian:12', pullPolicy: 'never' },
        recordingHooks().hooks,
      ),
      'image-forbidden',
    );
    assert.match(other.message, /allowedImages/);
    const latest = await rejectsWithCode(
      strict.resolve(
        { image: `${registry.host}/cuttle/tools`, pullPolicy: 'never' },
        recordingHooks().hooks,
      ),
      'image-forbidden',
    );
    assert.match(latest.message, /allowedImages/);
    const policy = await rejectsWithCode(
      strict.resolve({ image, pullPolicy: 'always' }, recordingHooks().hooks),
      'image-forbidden',
    );
    assert.match(policy.message, /allowedPullPolicies/);
    const ok = await strict.resolve(
      { image, pullPolicy: 'if-not-present' },
      recordingHooks().hooks,
    );
    assert.equal(ok.cached, true);
  });

  it('prepulls a list, reporting each image', async function () {
    await client.removeImage(image);
    const results = await resolver().prepull(
      [{ image, feed: feed() }, { image: `${registry.host}/cuttle/absent:1`, feed: feed() }, image],
      'if-not-present',
    );
    assert.deepEqual(
      results.map((result) => (result.ok ? 'ok' : result.error.code)),
      ['ok', 'image-not-found', 'ok'],
    );
    assert.equal(results[0]?.ok === true && results[0].cached, false);
    assert.equal(results[2]?.ok === true && results[2].cached, true);
  });
});
