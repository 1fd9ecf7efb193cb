import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CuttleError } from '../../protocol/errors.js';
import {
  AGENT_LABEL,
  BUILD_GIT_COMMIT_LABEL,
  BUILD_GIT_URL_LABEL,
  BUILD_SOURCE_LABEL,
  DEMO_IMAGE,
  DockerClient,
  ImageResolver,
  OPEN_IMAGE_POLICY,
  ensureDemoImage,
  imageRequestSecrets,
} from '../../images/index.js';
import { testAgentId } from '../support/docker.js';
import { startGitServer, type TestGitServer } from '../support/git-server.js';
import { recordingHooks } from '../support/registry.js';

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

/** Removes every image this test agent built. */
async function sweepImages(client: DockerClient, agentId: string): Promise<void> {
  for (const image of await client.listImages({ [AGENT_LABEL]: agentId })) {
    for (const tag of image.repoTags) await client.removeImage(tag).catch(() => undefined);
  }
}

describe('images: inline Dockerfile builds', function () {
  this.timeout(120_000);
  const client = DockerClient.connect();
  const agentId = testAgentId();
  const resolver = new ImageResolver(client, OPEN_IMAGE_POLICY, { agentId }, { logBatchMs: 10 });
  // Unique per run, so the first build is a real build.
  const dockerfile = `FROM ${DEMO_IMAGE}\nRUN echo "built for ${agentId}" > /built.txt\n`;

  before(async function () {
    await ensureDemoImage(client);
  });

  after(async function () {
    await sweepImages(client, agentId);
  });

  it('builds, streaming the output as verbose lines, then hits its cache', async function () {
    const first = recordingHooks();
    const built = await resolver.resolve({ dockerfile, pullPolicy: 'always' }, first.hooks);
    assert.match(built.ref, /^cuttle-build:[0-9a-f]{32}$/);
    assert.equal(built.cached, false);
    assert.deepEqual(first.events[0], { kind: 'state', state: 'building' });
    assert.ok(first.lines('verbose').some((line) => /^Step 2\/\d+ : RUN echo/.test(line)));
    assert.match(
      first.lines('info').at(-1) ?? '',
      /^built cuttle-build:.* from its inline Dockerfile/,
    );
    const progress = first.events.filter((event) => event.kind === 'progress');
    assert.ok(progress.length >= 2);
    const image = await client.imageExists(built.ref);
    assert.equal(image?.labels[BUILD_SOURCE_LABEL], 'dockerfile');
    assert.equal(image?.labels[AGENT_LABEL], agentId);

    const second = recordingHooks();
    const { summary, ...again } = await resolver.resolve(
      { dockerfile, pullPolicy: 'always' },
      second.hooks,
    );
    assert.deepEqual(again, { ref: built.ref, cached: true });
    assert.equal(summary?.id, image?.id, 'the cached image as the engine described it');
    assert.ok(!second.events.some((event) => event.kind === 'state'));
  });

  it('builds once for two tasks with the same new Dockerfile at the same time', async function () {
    const shared = `${dockerfile}RUN echo twice\n`;
    const first = recordingHooks();
    const second = recordingHooks();
    const [a, b] = await Promise.all([
      resolver.resolve({ dockerfile: shared, pullPolicy: 'always' }, first.hooks),
      resolver.resolve({ dockerfile: shared, pullPolicy: 'always' }, second.hooks),
    ]);
    assert.equal(a.ref, b.ref);
    // Either task may get there first: one builds, the other waits for that build.
    const [builder, waiter] = /^building/.test(first.lines('info')[0] ?? '')
      ? [first, second]
      : [second, first];
    assert.match(builder.lines('info')[0] ?? '', /^building the step image from its inline/);
    assert.match(waiter.lines('info')[0] ?? '', /^waiting for the build of .* that another task/);
    const steps = (lines: string[]): number =>
      lines.filter((line) => /^Step 1\//.test(line)).length;
    assert.equal(steps(builder.lines('verbose')), 1, 'one build');
    assert.equal(a.cached, false);
    assert.equal(b.cached, false);
  });

  it('fails a broken build with image-build-failed and the failing step output', async function () {
    const broken = `FROM ${DEMO_IMAGE}\nRUN echo ok-${agentId}\nRUN echo "the-step-said-${agentId}" && false\n`;
    const { hooks, lines } = recordingHooks();
    const error = await rejectsWithCode(
      resolver.resolve({ dockerfile: broken, pullPolicy: 'always' }, hooks),
      'image-build-failed',
    );
    assert.match(error.message, /failed at "Step 3\/\d+ : RUN echo/);
    assert.ok(error.message.includes(`the-step-said-${agentId}`), error.message);
    assert.match(error.message, /returned a non-zero code: 1/);
    assert.ok(!error.message.includes(`ok-${agentId}\n`), 'only the failing step output');
    assert.ok(lines('verbose').some((line) => line.includes(`the-step-said-${agentId}`)));
    // The engine keeps the successful step 2 as an untagged cache image: remove it.
    const kept = lines('verbose')
      .map((line) => /^ ---> ([0-9a-f]{12})$/.exec(line)?.[1])
      .filter((id) => id !== undefined);
    const step2 = kept.at(-1);
    if (step2 !== undefined && !(await client.imageExists(DEMO_IMAGE))?.id.includes(step2))
      await client.removeImage(step2);
  });

  it('removes the least recently used built images beyond the count, never one in use', async function () {
    const refs: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const result = await resolver.resolve(
        {
          dockerfile: `FROM ${DEMO_IMAGE}\nLABEL retention=${name}-${randomUUID()}\n`,
          pullPolicy: 'always',
        },
        recordingHooks().hooks,
      );
      refs.push(result.ref);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const [a, b, c] = refs;
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    // Keep 1: `c` (most recently used) stays, `a` stays because a step uses it, `b` and the
    // earlier tests' images go.
    const removed = await resolver.pruneBuiltImages(new Set([a]), { maxCount: 1 });
    assert.ok(await client.imageExists(a), 'in use: kept');
    assert.ok(await client.imageExists(c), 'most recent: kept');
    assert.equal(await client.imageExists(b), undefined);
    assert.ok(removed.includes(b));
    assert.ok(!removed.includes(a) && !removed.includes(c));
  });
});

describe('images: builds from a Git URL (git daemon)', function () {
  this.timeout(120_000);
  const client = DockerClient.connect();
  const agentId = testAgentId();
  const resolver = new ImageResolver(client, OPEN_IMAGE_POLICY, { agentId }, { logBatchMs: 10 });
  let git: TestGitServer;

  before(async function () {
    const started = await startGitServer();
    if (typeof started === 'string') {
      console.log(`      skipped: ${started}`);
      this.skip();
    }
    git = started;
    await ensureDemoImage(client);
    await git.createRepo('tools', {
      'docker/Dockerfile': `FROM ${DEMO_IMAGE}\nCOPY version.txt /version.txt\nLABEL run=${agentId}\n`,
      'docker/version.txt': 'one\n',
      'README.md': 'tools\n',
    });
  });

  after(async function () {
    await sweepImages(client, agentId);
    await git?.dispose();
  });

  it('builds from url#commit:context, reuses it while the commit is unchanged, rebuilds after a new one', async function () {
    const request = {
      pullPolicy: 'always' as const,
      git: { url: git.url('tools'), ref: 'main', dockerfile: 'Dockerfile', context: 'docker' },
    };
    const first = recordingHooks();
    const built = await resolver.resolve(request, first.hooks);
    assert.equal(built.cached, false);
    assert.deepEqual(first.events[0], { kind: 'state', state: 'building' });
    const image = await client.imageExists(built.ref);
    assert.equal(image?.labels[BUILD_SOURCE_LABEL], 'git');
    assert.equal(image?.labels[BUILD_GIT_URL_LABEL], git.url('tools'));
    assert.match(image?.labels[BUILD_GIT_COMMIT_LABEL] ?? '', /^[0-9a-f]{40}$/);

    const unchanged = recordingHooks();
    const { summary, ...reused } = await resolver.resolve(request, unchanged.hooks);
    assert.deepEqual(reused, { ref: built.ref, cached: true });
    assert.equal(summary?.id, image?.id, 'the cached image as the engine described it');
    assert.match(unchanged.lines('verbose')[0] ?? '', /built earlier from git:/);

    // A change outside the context still makes a new commit: cached by commit, not by content.
    const commit = await git.commit('tools', { 'docker/version.txt': 'two\n' }, 'v2');
    const rebuilt = await resolver.resolve(request, recordingHooks().hooks);
    assert.equal(rebuilt.cached, false);
    assert.notEqual(rebuilt.ref, built.ref);
    assert.equal((await client.imageExists(rebuilt.ref))?.labels[BUILD_GIT_COMMIT_LABEL], commit);

    // The annotated tag at the same commit resolves to the same commit.
    const tagged = await resolver.resolve(
      { ...request, git: { ...request.git, ref: 'v2' } },
      recordingHooks().hooks,
    );
    assert.equal((await client.imageExists(tagged.ref))?.labels[BUILD_GIT_COMMIT_LABEL], commit);
  });

  it('fails with image-build-failed for an unknown ref', async function () {
    const error = await rejectsWithCode(
      resolver.resolve(
        {
          pullPolicy: 'always',
          git: {
            url: git.url('tools'),
            ref: 'no-such-branch',
            dockerfile: 'Dockerfile',
            context: 'docker',
          },
        },
        recordingHooks().hooks,
      ),
      'image-build-failed',
    );
    assert.match(error.message, /"no-such-branch" is neither a branch nor a tag/);
  });

  it('masks credentials in the URL everywhere, and exposes them for the masker', async function () {
    const url = 'http://deploy:t0k3n-s3cret@127.0.0.1:1/tools.git';
    const request = {
      pullPolicy: 'always' as const,
      git: { url, ref: 'main', dockerfile: 'Dockerfile', context: '.' },
    };
    assert.deepEqual(imageRequestSecrets(request), ['t0k3n-s3cret']);
    const { hooks, events } = recordingHooks();
    const error = await rejectsWithCode(resolver.resolve(request, hooks), 'image-build-failed');
    assert.ok(!error.message.includes('t0k3n-s3cret'), error.message);
    assert.match(error.message, /deploy:\*{8}@127\.0\.0\.1:1/);
    assert.ok(!JSON.stringify(events).includes('t0k3n-s3cret'));
  });
});
