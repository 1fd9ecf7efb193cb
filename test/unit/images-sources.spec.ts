import assert from 'node:assert/strict';
import { CuttleError } from '../../protocol/errors.js';
import {
  checkImagePolicy,
  checkLibc,
  classifyPullFailure,
  gitUrlSecrets,
  imageRefForms,
  isImageAllowed,
  maskSecrets,
  redactGitUrl,
  registryOf,
} from '../../images/index.js';
import { Flight, Subscriber } from '../../images/flight.js';
import { checkGitUrl, normalizeGitSource, remoteContext } from '../../images/git-source.js';
import { parseOsRelease } from '../../images/image-libc.js';
import { PullProgress, Throttle } from '../../images/pull-progress.js';

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof CuttleError ? error.code : 'not a CuttleError';
  }
  return undefined;
}

describe('images: image policy', function () {
  it('knows a reference by its short, tagged and fully qualified forms', function () {
    assert.deepEqual(imageRefForms('debian'), [
      'debian',
      'debian:latest',
      'docker.io/library/debian:latest',
    ]);
    assert.ok(imageRefForms('docker.io/library/debian:12').includes('debian:12'));
    assert.ok(
      imageRefForms('registry.example.com:5000/a/b:1').includes('registry.example.com:5000/a/b:1'),
    );
    assert.ok(imageRefForms('acme/tool@sha256:abc').includes('docker.io/acme/tool@sha256:abc'));
    assert.equal(registryOf('debian'), 'https://index.docker.io/v1/');
    assert.equal(registryOf('127.0.0.1:5000/x/y:1'), '127.0.0.1:5000');
  });

  it('matches globs with exclusions, whatever the form or order', function () {
    const patterns = ['registry.example.com/**', 'debian:*', '!debian:latest', '!**:*-rc*'];
    assert.equal(isImageAllowed(patterns, 'registry.example.com/team/tool:1.2'), true);
    assert.equal(isImageAllowed(patterns, 'registry.example.com/team/tool:1.3-rc1'), false);
    assert.equal(isImageAllowed(patterns, 'debian:12'), true);
    assert.equal(isImageAllowed(patterns, 'docker.io/library/debian:12'), true);
    assert.equal(isImageAllowed(patterns, 'debian'), false, 'debian means debian:latest');
    assert.equal(isImageAllowed(patterns, 'docker.io/library/debian:latest'), false);
    assert.equal(isImageAllowed(patterns, 'ubuntu:24.04'), false);
    assert.equal(isImageAllowed(['debian:*'], 'evil.example.com/debian:12'), false, '* stops at /');
    assert.equal(isImageAllowed([], 'anything:at-all'), true);
    assert.equal(
      isImageAllowed(['!alpine*'], 'debian:12'),
      true,
      'only exclusions: the rest is allowed',
    );
  });

  it('names the setting in image-forbidden', function () {
    const policy = {
      allowedImages: ['debian:*'],
      allowedPullPolicies: ['if-not-present' as const],
    };
    assert.equal(
      codeOf(() => checkImagePolicy(policy, 'alpine:3', 'if-not-present')),
      'image-forbidden',
    );
    assert.equal(
      codeOf(() => checkImagePolicy(policy, 'debian:12', 'always')),
      'image-forbidden',
    );
    assert.equal(
      codeOf(() => checkImagePolicy(policy, 'debian:12', 'if-not-present')),
      undefined,
    );
  });
});

describe('images: pull failures and progress', function () {
  it('tells the causes apart from the engine words', function () {
    const cases: [string, number | undefined, string][] = [
      ['manifest for r/x:1 not found: manifest unknown: manifest unknown', 404, 'not-found'],
      [
        'pull access denied for nosuch, repository does not exist or may require docker login',
        500,
        'not-found',
      ],
      ['unauthorized: authentication required', 500, 'unauthorized'],
      ['Head "http://r/v2/x/manifests/1": no basic auth credentials', 500, 'unauthorized'],
      [
        'Get "http://127.0.0.1:5098/v2/": dial tcp 127.0.0.1:5098: connect: connection refused',
        500,
        'unreachable',
      ],
      ['Get "https://r.example/v2/": dial tcp: lookup r.example: no such host', 500, 'unreachable'],
      ['Get "https://r/v2/": net/http: TLS handshake timeout', 500, 'unreachable'],
      ['received unexpected HTTP status: 503 Service Unavailable', 500, 'server-error'],
      ['toomanyrequests: You have reached your pull rate limit.', 500, 'rate-limited'],
      ['something else entirely', 500, 'other'],
    ];
    for (const [message, status, expected] of cases) {
      const kind = classifyPullFailure(message, status);
      assert.equal(kind.kind === 'not-found' ? 'not-found' : kind.reason, expected, message);
    }
  });

  it('computes an overall percent from layer byte counts, never 100 before the end', function () {
    const progress = new PullProgress();
    assert.equal(progress.percent, undefined);
    progress.update({ id: 'aaaaaaaaaaaa', status: 'Pulling fs layer' });
    progress.update({ id: 'bbbbbbbbbbbb', status: 'Already exists' });
    progress.update({
      id: 'aaaaaaaaaaaa',
      status: 'Downloading',
      progressDetail: { current: 500, total: 1000 },
    });
    assert.equal(progress.percent, 25);
    progress.update({ id: 'aaaaaaaaaaaa', status: 'Download complete' });
    assert.equal(progress.percent, 50);
    progress.update({
      id: 'aaaaaaaaaaaa',
      status: 'Extracting',
      progressDetail: { current: 1000, total: 1000 },
    });
    assert.equal(progress.percent, 99);
    assert.equal(progress.update({ status: 'Digest: sha256:00' }), false);
  });

  it('throttles', function () {
    let now = 0;
    const throttle = new Throttle(250, () => now);
    assert.equal(throttle.ready(), true);
    now = 100;
    assert.equal(throttle.ready(), false);
    now = 260;
    assert.equal(throttle.ready(), true);
  });
});

describe('images: Git sources', function () {
  it('finds and masks the credentials of a URL', function () {
    assert.deepEqual(gitUrlSecrets('https://user:p%40ss@host/r.git'), ['p%40ss', 'p@ss']);
    assert.deepEqual(gitUrlSecrets('https://ghp_token@host/r.git'), ['ghp_token']);
    assert.deepEqual(gitUrlSecrets('git://host/r.git'), []);
    assert.equal(
      redactGitUrl('https://user:p%40ss@host/r.git'),
      'https://user:********@host/r.git',
    );
    assert.equal(redactGitUrl('https://ghp_token@host/r.git'), 'https://********@host/r.git');
    assert.equal(maskSecrets('a p@ss b p%40ss', ['p@ss', 'p%40ss']), 'a ******** b ********');
  });

  it('accepts only URLs the engine builds as Git, and forms the remote context', function () {
    assert.equal(
      codeOf(() => checkGitUrl('https://host/tools.git')),
      undefined,
    );
    assert.equal(
      codeOf(() => checkGitUrl('git://host/tools')),
      undefined,
    );
    assert.equal(
      codeOf(() => checkGitUrl('https://host/tools')),
      'image-build-failed',
    );
    const source = { url: 'git://h/r.git', dockerfile: 'Dockerfile', context: '.' };
    assert.equal(remoteContext(source, 'abc'), 'git://h/r.git#abc');
    assert.equal(
      remoteContext({ ...source, context: './docker/' }, 'abc'),
      'git://h/r.git#abc:docker',
    );
  });
});

describe('images: Git URLs the engine builds as Git', function () {
  // moby's builder/remotecontext/urlutil: IsURL and IsGitURL, on the whole remote string.
  const engineTakesAsGit = (remote: string): boolean =>
    ((remote.startsWith('https://') || remote.startsWith('http://')) &&
      /\.git(?:#.+)?$/.test(remote)) ||
    ['git://', 'git@'].some((prefix) => remote.startsWith(prefix));
  const refusal = (url: string): string => {
    try {
      checkGitUrl(url);
    } catch (error) {
      assert.ok(error instanceof CuttleError && error.code === 'image-build-failed', String(error));
      return error.message;
    }
    assert.fail(`expected ${url} to be refused`);
  };
  const source = { dockerfile: 'Dockerfile', context: '.' };

  for (const url of [
    'https://h/o/r.git?private_token=t0ps3cret',
    'https://h/o/R.GIT',
    'HTTPS://h/o/r.git',
    'GIT://h/o/r',
    'ftp://h/o/r.git',
    'github.com/o/r',
    'https://h/o/r.git/',
  ]) {
    it(`refuses ${url}, which the engine would not build as Git`, function () {
      const message = refusal(url);
      assert.match(
        message,
        /use git:\/\/…, git@host:path, or an http\(s\) URL whose path ends in \.git/,
      );
      assert.doesNotMatch(message, /t0ps3cret/);
    });
  }

  it('accepts the forms the engine takes as Git', function () {
    for (const url of ['https://h/o/r.git', 'http://h/o/r.git', 'git://h/o/r', 'git@h:o/r.git']) {
      checkGitUrl(url);
      assert.ok(engineTakesAsGit(remoteContext({ ...source, url }, 'abc')), url);
    }
  });

  it('drops the trailing slash of a .git path, which the engine would not take as Git', function () {
    const normalized = normalizeGitSource({ ...source, url: 'https://h/o/r.git/' });
    assert.equal(normalized.url, 'https://h/o/r.git');
    assert.ok(engineTakesAsGit(remoteContext(normalized, 'abc')));
  });

  it('takes a fragment #ref[:folder] as the ref and the context', function () {
    const cases: [string, string | undefined, string][] = [
      ['https://h/o/r.git#main', 'main', '.'],
      ['https://h/o/r.git#main:docker', 'main', 'docker'],
      ['https://h/o/r.git#:docker/app', undefined, 'docker/app'],
      ['https://h/o/r.git#', undefined, '.'],
      ['git@h:o/r.git#v1.2', 'v1.2', '.'],
    ];
    for (const [url, ref, context] of cases) {
      const normalized = normalizeGitSource({ ...source, url });
      assert.equal(normalized.url, url.replace(/#.*$/, ''), url);
      assert.equal(normalized.ref, ref, url);
      assert.equal(normalized.context, context, url);
      const remote = remoteContext(normalized, 'abc');
      assert.equal(remote.split('#').length, 2, `one fragment in ${remote}`);
      assert.ok(engineTakesAsGit(remote), remote);
    }
    assert.equal(
      remoteContext(normalizeGitSource({ ...source, url: 'https://h/o/r.git#main:docker' }), 'abc'),
      'https://h/o/r.git#abc:docker',
    );
    const same = normalizeGitSource({
      ...source,
      url: 'https://h/o/r.git#main:d',
      ref: 'main',
      context: './d/',
    });
    assert.equal(same.ref, 'main');
  });

  it('refuses a fragment that contradicts container.git.ref or .context', function () {
    assert.throws(
      () => normalizeGitSource({ ...source, url: 'https://h/o/r.git#main', ref: 'dev' }),
      /the URL's fragment names the ref main, but container\.git\.ref is dev/,
    );
    assert.throws(
      () => normalizeGitSource({ ...source, url: 'https://h/o/r.git#:docker', context: 'app' }),
      /the URL's fragment names the folder docker, but container\.git\.context is app/,
    );
  });

  it('treats the values of a query string as secrets, like the user info', function () {
    const url = 'git://h/o/r.git?private_token=t0k%2Bn&user=ci';
    assert.deepEqual(gitUrlSecrets(url), ['t0k%2Bn', 't0k+n', 'ci']);
    assert.equal(redactGitUrl(url), 'git://h/o/r.git?private_token=********&user=********');
    assert.equal(
      redactGitUrl('https://u:p@h/o/r.git?t=x#main'),
      'https://u:********@h/o/r.git?t=********#main',
    );
    assert.deepEqual(gitUrlSecrets('https://u:p@h/o/r.git?t=x#main'), ['p', 'x']);
  });
});

describe('images: libc check', function () {
  it('parses os-release and explains a mismatch', function () {
    const fields = parseOsRelease(
      'NAME="Alpine Linux"\nID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n',
    );
    assert.equal(fields.get('ID'), 'alpine');
    assert.equal(fields.get('PRETTY_NAME'), 'Alpine Linux v3.20');
    assert.equal(
      codeOf(() => checkLibc('glibc', 'glibc', 'debian:12')),
      undefined,
    );
    assert.equal(
      codeOf(() => checkLibc('glibc', 'unknown', 'scratch-thing')),
      undefined,
    );
    assert.equal(
      codeOf(() => checkLibc(undefined, 'musl', 'alpine:3')),
      undefined,
    );
    try {
      checkLibc(
        'glibc',
        { libc: 'musl', evidence: '/lib/ld-musl-x86_64.so.1', os: 'Alpine Linux v3.20' },
        'alpine:3',
        'calamari',
      );
      assert.fail('expected image-incompatible');
    } catch (error) {
      assert.ok(error instanceof CuttleError && error.code === 'image-incompatible');
      assert.equal(
        error.message,
        'the image alpine:3 is musl-based (Alpine Linux v3.20; found /lib/ld-musl-x86_64.so.1), but calamari needs glibc: use a glibc-based image such as Debian or Ubuntu (e.g. debian:bookworm-slim) instead of Alpine or another musl-based image',
      );
    }
  });
});

describe('images: shared work (Flight)', function () {
  it('runs once for several callers and is cancelled when the last one leaves', async function () {
    let runs = 0;
    let seenSignal: AbortSignal | undefined;
    let release: (() => void) | undefined;
    let ended = 0;
    const flight = new Flight<string>(
      async (self) => {
        runs += 1;
        seenSignal = self.signal;
        await new Promise<void>((resolve) => (release = resolve));
        return 'done';
      },
      () => (ended += 1),
    );
    const one = new AbortController();
    const two = new AbortController();
    const a = flight.join(new Subscriber(), one.signal);
    const b = flight.join(new Subscriber(), two.signal);
    await new Promise((resolve) => setImmediate(resolve));
    one.abort(new Error('task one cancelled'));
    await assert.rejects(a, /task one cancelled/);
    assert.equal(seenSignal?.aborted, false, 'another caller still waits');
    two.abort(new Error('task two cancelled'));
    await assert.rejects(b, /task two cancelled/);
    assert.equal(seenSignal?.aborted, true);
    release?.();
    assert.equal(await flight.promise, 'done');
    assert.equal(runs, 1);
    assert.ok(ended >= 1);
  });

  it('keeps hook calls in order and reports the first hook failure', async function () {
    const seen: number[] = [];
    const subscriber = new Subscriber();
    subscriber.enqueue(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push(1);
    });
    subscriber.enqueue(() => Promise.reject(new Error('journal full')));
    subscriber.enqueue(async () => {
      seen.push(3);
    });
    await assert.rejects(subscriber.flush(), /journal full/);
    assert.deepEqual(seen, [1, 3]);
  });
});
