import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import { pack, type Header, type Pack } from 'tar-stream';
import { ToolInvalidError } from '../../workspace/tool-invalid-error.js';
import { compareToolVersions, ToolStore } from '../../workspace/tool-store.js';
import { WorkspaceError } from '../../workspace/workspace-error.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

type EntrySpec = Partial<Header> & Pick<Header, 'name'> & { body?: string };

/** An uncompressed tar of the entries, in order; `body` only for files. */
async function tarOf(entries: readonly EntrySpec[]): Promise<Buffer> {
  const archive = pack();
  for (const { body, ...header } of entries) {
    if (body === undefined) archive.entry(header);
    else archive.entry(header, body);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) {
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  }
  return Buffer.concat(chunks);
}

/** Rewrites the type flag of the tar header at `offset` (and its checksum). */
function withTypeFlag(tar: Buffer, offset: number, flag: string): Buffer {
  const copy = Buffer.from(tar);
  copy[offset + 156] = flag.charCodeAt(0);
  copy.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = offset; i < offset + 512; i++) sum += copy[i] ?? 0;
  copy.write(`${sum.toString(8).padStart(6, '0')}\0 `, offset + 148, 'latin1');
  return copy;
}

async function walk(dir: string, base = dir): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    found.push(relative(base, path));
    if (entry.isDirectory()) found.push(...(await walk(path, base)));
  }
  return found.sort();
}

function settled(): { done: Promise<void>; callback: (error?: Error | null) => void } {
  let callback: (error?: Error | null) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    callback = (error) => (error ? reject(error) : resolve());
  });
  return { done, callback };
}

/** Adds a file made of `count` copies of `block`, waiting for the archive to take each one. */
async function addRepeated(archive: Pack, name: string, block: Buffer, count: number) {
  const { done, callback } = settled();
  const sink = archive.entry({ name, size: block.length * count, mode: 0o644 }, callback);
  for (let i = 0; i < count; i++) {
    if (!sink.write(block)) await new Promise<void>((resolve) => sink.once('drain', resolve));
  }
  sink.end(undefined); // streamx types want an argument; undefined writes nothing
  await done;
}

describe('tool store', () => {
  let root: string;
  let toolsDir: string;
  let bundles: string;
  let store: ToolStore;
  let bundleCount = 0;

  async function bundle(tar: Buffer): Promise<string> {
    bundleCount += 1;
    const path = join(bundles, `bundle-${bundleCount}.tar.gz`);
    await writeFile(path, gzipSync(tar));
    return path;
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cuttle-tools-'));
    toolsDir = join(root, 'Tools');
    bundles = join(root, 'bundles');
    await mkdir(toolsDir);
    await mkdir(bundles);
    store = new ToolStore(toolsDir);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('unpacks a bundle with its modes, nested folders and links, and the tool runs', async () => {
    const script = '#!/bin/sh\ncat "$(dirname "$0")/../lib/data-link"\n';
    const path = await bundle(
      await tarOf([
        { name: './', type: 'directory', mode: 0o755 },
        { name: 'bin/', type: 'directory', mode: 0o755 },
        { name: 'bin/run.sh', mode: 0o755, body: script },
        { name: 'bin/latest', type: 'symlink', linkname: 'run.sh' },
        { name: 'bin/run-again', type: 'link', linkname: 'bin/run.sh' },
        { name: 'bin/suid', mode: 0o6755, body: 'x' },
        { name: 'lib/deep/nested/data.txt', mode: 0o640, body: 'hello from the tool\n' },
        { name: 'lib/deep/', type: 'directory', mode: 0o750 },
        { name: 'lib/data-link', type: 'symlink', linkname: 'deep/nested/data.txt' },
        { name: 'lib/read-only/', type: 'directory', mode: 0o555 },
        { name: 'lib/read-only/inside.txt', mode: 0o444, body: 'r' },
      ]),
    );

    const installed = await store.install('Calamari', '28.1.0', path);

    assert.equal(installed, join(toolsDir, 'Calamari', '28.1.0'));
    assert.equal(await store.installedPath('Calamari', '28.1.0'), installed);
    assert.deepEqual(await store.list(), [{ name: 'Calamari', version: '28.1.0' }]);
    assert.deepEqual(await readdir(join(toolsDir, 'Calamari')), ['28.1.0']);
    const { stdout } = await run(join(installed, 'bin', 'latest'));
    assert.equal(stdout, 'hello from the tool\n');
    const modeOf = async (path: string) => (await stat(join(installed, path))).mode & 0o7777;
    assert.equal(await modeOf('bin/run.sh'), 0o755);
    assert.equal(await modeOf('bin/suid'), 0o755, 'setuid and setgid are stripped');
    assert.equal(await modeOf('lib/deep/nested/data.txt'), 0o640);
    assert.equal(await modeOf('lib/deep'), 0o750, 'a folder entry after its content');
    assert.equal(await modeOf('lib/deep/nested'), 0o755, 'an implicit folder');
    assert.equal(await modeOf('lib/read-only'), 0o755, 'folders keep the owner rwx');
    assert.equal(await modeOf('lib/read-only/inside.txt'), 0o444);
    assert.equal(await modeOf('.'), 0o755);
    assert.ok((await lstat(join(installed, 'bin/latest'))).isSymbolicLink());
    const [original, hard] = await Promise.all([
      stat(join(installed, 'bin/run.sh')),
      stat(join(installed, 'bin/run-again')),
    ]);
    assert.equal(hard.ino, original.ino, 'a hard link, not a copy');
  });

  describe('refuses a bundle with', () => {
    const cases: { title: string; entries: EntrySpec[]; entry: string; typeFlag?: string }[] = [
      {
        title: 'an absolute path',
        entries: [{ name: '<root>/absolute.txt', body: 'x' }],
        entry: '<root>/absolute.txt',
      },
      {
        title: 'a ".." component',
        entries: [{ name: '../../../dotdot.txt', body: 'x' }],
        entry: '../../../dotdot.txt',
      },
      {
        title: 'a ".." component in the middle',
        entries: [{ name: 'bin/../../../../dotdot.txt', body: 'x' }],
        entry: 'bin/../../../../dotdot.txt',
      },
      {
        title: 'a symbolic link out of the folder',
        entries: [{ name: 'bin/escape', type: 'symlink', linkname: '../../..' }],
        entry: 'bin/escape',
      },
      {
        title: 'a symbolic link to an absolute path',
        entries: [{ name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }],
        entry: 'passwd',
      },
      {
        title: 'a chain of symbolic links that leads out',
        entries: [
          { name: 'a/b/s', type: 'symlink', linkname: '../..' },
          { name: 'a/b/t', type: 'symlink', linkname: 's/..' },
        ],
        entry: 'a/b/t',
      },
      {
        title: 'a file written through a symbolic link',
        entries: [
          { name: 'sub/', type: 'directory' },
          { name: 'through', type: 'symlink', linkname: 'sub' },
          { name: 'through/file', body: 'x' },
        ],
        entry: 'through/file',
      },
      {
        title: 'a hard link out of the folder',
        entries: [{ name: 'hard', type: 'link', linkname: '../../../outside.txt' }],
        entry: 'hard',
      },
      {
        title: 'a hard link to an absolute path',
        entries: [{ name: 'hard', type: 'link', linkname: '<root>/outside.txt' }],
        entry: 'hard',
      },
      {
        title: 'a character device',
        entries: [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }],
        entry: 'null',
      },
      {
        title: 'a block device',
        entries: [{ name: 'disk', type: 'block-device', devmajor: 8, devminor: 0 }],
        entry: 'disk',
      },
      { title: 'a FIFO', entries: [{ name: 'pipe', type: 'fifo' }], entry: 'pipe' },
      {
        title: 'an entry of an unknown type (such as a socket)',
        entries: [{ name: 'socket', body: '' }],
        entry: 'socket',
        typeFlag: 'S',
      },
      {
        title: 'the same path twice',
        entries: [
          { name: 'twice', body: 'a' },
          { name: 'twice', body: 'b' },
        ],
        entry: 'twice',
      },
    ];

    for (const { title, entries, entry, typeFlag } of cases) {
      it(title, async () => {
        await writeFile(join(root, 'outside.txt'), 'canary');
        const expected = entry.replace('<root>', root);
        const resolved = entries.map((spec) => ({
          ...spec,
          name: spec.name.replace('<root>', root),
          ...(spec.linkname === undefined
            ? {}
            : { linkname: spec.linkname.replace('<root>', root) }),
        }));
        // A good entry first (header + 512 bytes of data), so there is something to clean up.
        let tar = await tarOf([{ name: 'README', body: 'fine' }, ...resolved]);
        if (typeFlag !== undefined) tar = withTypeFlag(tar, 1024, typeFlag);
        const before = await walk(root);

        await assert.rejects(store.install('Bad', '1.0.0', await bundle(tar)), (error) => {
          assert.ok(error instanceof ToolInvalidError, String(error));
          assert.equal(error.code, 'tool-invalid');
          assert.equal(error.entry, expected);
          assert.ok(error.message.includes(`"${expected}"`), error.message);
          return true;
        });

        assert.equal(await store.installedPath('Bad', '1.0.0'), undefined);
        assert.deepEqual(await store.list(), []);
        assert.deepEqual(await readdir(join(toolsDir, 'Bad')), [], 'no temporary folder left');
        const after = await walk(root);
        assert.deepEqual(
          after,
          [...before, join('Tools', 'Bad'), join('bundles', `bundle-${bundleCount}.tar.gz`)].sort(),
        );
        assert.equal(await readFile(join(root, 'outside.txt'), 'utf8'), 'canary');
      });
    }
  });

  it('refuses a truncated or corrupt bundle', async () => {
    const tar = await tarOf([
      { name: 'README', body: 'fine' },
      { name: 'big.bin', body: 'x'.repeat(64 * 1024) },
    ]);
    const gzipped = gzipSync(tar);
    const truncatedGzip = join(bundles, 'truncated-gzip.tar.gz');
    await writeFile(truncatedGzip, gzipped.subarray(0, gzipped.length - 20));
    const cutInEntry = join(bundles, 'cut-in-entry.tar.gz');
    await writeFile(cutInEntry, gzipSync(tar, { level: 0 }).subarray(0, 8192));
    const notGzip = join(bundles, 'not-gzip.tar.gz');
    await writeFile(notGzip, randomBytes(4096));
    const truncatedTar = join(bundles, 'truncated-tar.tar.gz');
    await writeFile(truncatedTar, gzipSync(tar.subarray(0, 4096)));
    const notTar = join(bundles, 'not-tar.tar.gz');
    await writeFile(notTar, gzipSync(randomBytes(4096)));

    for (const [path, problem] of [
      [truncatedGzip, /gzip/],
      [cutInEntry, /gzip/],
      [notGzip, /gzip/],
      [truncatedTar, /tar archive at entry "big.bin" \(Unexpected end of data\)/],
      [notTar, /tar/],
    ] as const) {
      await assert.rejects(store.install('Broken', '1.0.0', path), (error) => {
        assert.ok(error instanceof ToolInvalidError, `${path}: ${String(error)}`);
        assert.equal(error.code, 'tool-invalid');
        assert.match(error.message, problem);
        return true;
      });
      assert.deepEqual(await readdir(join(toolsDir, 'Broken')), [], path);
    }
    assert.deepEqual(await store.list(), []);
  });

  it('fails with workspace-error when the bundle cannot be read', async () => {
    await assert.rejects(
      store.install('Calamari', '1.0.0', join(bundles, 'missing.tar.gz')),
      (error) => error instanceof WorkspaceError && error.code === 'workspace-error',
    );
    assert.deepEqual(await readdir(join(toolsDir, 'Calamari')), []);
  });

  it('refuses names and versions that are not plain folder names', async () => {
    const path = await bundle(await tarOf([{ name: 'README', body: 'fine' }]));
    for (const bad of [
      '',
      '..',
      '../x',
      'a/b',
      '.incoming-1',
      '.hidden',
      'a..b',
      'x'.repeat(129),
    ]) {
      await assert.rejects(store.install(bad, '1.0.0', path), ToolInvalidError, `name ${bad}`);
      await assert.rejects(
        store.install('Calamari', bad, path),
        ToolInvalidError,
        `version ${bad}`,
      );
      await assert.rejects(store.installedPath(bad, '1.0.0'), ToolInvalidError);
    }
    assert.deepEqual(await walk(toolsDir), []);
  });

  it('unpacks a tool once when two tasks need it at the same time', async () => {
    const path = await bundle(await tarOf([{ name: 'README', body: 'fine' }]));

    const first = store.install('Calamari', '1.0.0', path);
    const second = store.install('Calamari', '1.0.0', path);
    const other = store.install('Calamari', '1.0.1', path);

    assert.equal(second, first, 'the same install is shared');
    assert.notEqual(other, first);
    const [a, b, c] = await Promise.all([first, second, other]);
    assert.equal(a, b);
    assert.equal(c, join(toolsDir, 'Calamari', '1.0.1'));
    // Once installed, the bundle is not even read.
    assert.equal(await store.install('Calamari', '1.0.0', join(bundles, 'missing.tar.gz')), a);
    assert.deepEqual(await readdir(join(toolsDir, 'Calamari')), ['1.0.0', '1.0.1']);
  });

  it('fetches a missing tool once for concurrent callers, and not at all once installed', async () => {
    const path = await bundle(await tarOf([{ name: 'README', body: 'fine' }]));
    let fetches = 0;
    const fetchBundle = async () => {
      fetches += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return path;
    };

    const results = await Promise.all([
      store.ensure('Calamari', '2.0.0', fetchBundle),
      store.ensure('Calamari', '2.0.0', fetchBundle),
      store.install('Calamari', '2.0.0', join(bundles, 'never-read.tar.gz')),
    ]);

    assert.equal(fetches, 1);
    assert.deepEqual(new Set(results), new Set([join(toolsDir, 'Calamari', '2.0.0')]));
    await store.ensure('Calamari', '2.0.0', fetchBundle);
    assert.equal(fetches, 1, 'an installed tool is not fetched');
    const failing = () => Promise.reject(new WorkspaceError('blob gone', 'x'));
    await assert.rejects(store.ensure('Calamari', '3.0.0', failing), /blob gone/);
    assert.deepEqual(await readdir(join(toolsDir, 'Calamari')), ['2.0.0']);
  });

  it('never lists what a crash left behind, and removes it at start-up', async () => {
    const path = await bundle(await tarOf([{ name: 'README', body: 'fine' }]));
    await store.install('Calamari', '1.0.0', path);
    const incoming = join(toolsDir, 'Calamari', '.incoming-1.0.1-Ab12Cd');
    await mkdir(join(incoming, 'bin'), { recursive: true });
    await writeFile(join(incoming, 'bin', 'half'), 'half a file');
    const removing = join(toolsDir, 'Calamari', '.removing-0.9.0-0a1b2c3d');
    await mkdir(removing);
    await writeFile(join(toolsDir, 'stray.txt'), 'not a tool');
    await writeFile(join(toolsDir, 'Calamari', 'notes.txt'), 'not a version');

    assert.deepEqual(await store.list(), [{ name: 'Calamari', version: '1.0.0' }]);
    assert.equal(await store.installedPath('Calamari', '1.0.1'), undefined);
    assert.deepEqual((await store.removeIncomplete()).sort(), [incoming, removing].sort());
    assert.deepEqual((await readdir(join(toolsDir, 'Calamari'))).sort(), ['1.0.0', 'notes.txt']);

    // The interrupted version installs normally afterwards.
    await store.install('Calamari', '1.0.1', path);
    assert.deepEqual(await store.list(), [
      { name: 'Calamari', version: '1.0.0' },
      { name: 'Calamari', version: '1.0.1' },
    ]);
  });

  it('orders versions by semver, then others by string', () => {
    const versions = ['1.2.9', 'build-b', '1.10.0', '1.2.10', 'build-a', '2.0.0-beta.1', '2.0.0'];
    assert.deepEqual(versions.sort(compareToolVersions), [
      'build-a',
      'build-b',
      '1.2.9',
      '1.2.10',
      '1.10.0',
      '2.0.0-beta.1',
      '2.0.0',
    ]);
  });

  it('keeps the newest 3 versions of each tool by semver and never removes one in use', async () => {
    const path = await bundle(await tarOf([{ name: 'README', body: 'fine' }]));
    const calamari = ['1.2.9', '0.9.0', '1.2.10', '1.2.0', '2.0.0-beta.1', '1.10.0'];
    const other = ['build-a', 'build-c', 'build-b', 'build-d'];
    for (const version of calamari) await store.install('Calamari', version, path);
    for (const version of other) await store.install('Other', version, path);
    await store.install('Single', '1.0.0', path);

    const removed = await store.prune(new Set(['Calamari@0.9.0', 'Single@1.0.0']));

    assert.deepEqual(removed, [
      { name: 'Calamari', version: '1.2.9' },
      { name: 'Calamari', version: '1.2.0' },
      { name: 'Other', version: 'build-a' },
    ]);
    assert.deepEqual(await store.list(), [
      { name: 'Calamari', version: '0.9.0' },
      { name: 'Calamari', version: '1.2.10' },
      { name: 'Calamari', version: '1.10.0' },
      { name: 'Calamari', version: '2.0.0-beta.1' },
      { name: 'Other', version: 'build-b' },
      { name: 'Other', version: 'build-c' },
      { name: 'Other', version: 'build-d' },
      { name: 'Single', version: '1.0.0' },
    ]);
    assert.ok(!(await readdir(join(toolsDir, 'Calamari'))).some((name) => name.startsWith('.')));

    // keep = 1, with the newest in use: the newest one not in use is kept as well.
    assert.deepEqual(await store.prune(new Set(['Calamari@2.0.0-beta.1']), 1), [
      { name: 'Calamari', version: '1.2.10' },
      { name: 'Calamari', version: '0.9.0' },
      { name: 'Other', version: 'build-c' },
      { name: 'Other', version: 'build-b' },
    ]);
    assert.deepEqual(await store.list(), [
      { name: 'Calamari', version: '1.10.0' },
      { name: 'Calamari', version: '2.0.0-beta.1' },
      { name: 'Other', version: 'build-d' },
      { name: 'Single', version: '1.0.0' },
    ]);
  });

  it('unpacks a large bundle as a stream, without holding it in memory', async function () {
    this.timeout(120_000);
    const randomMiB = 64; // incompressible: the .tar.gz itself is larger than the memory allowed
    const zeroMiB = 200; // compresses to almost nothing, but 200 MiB once unpacked
    const path = join(bundles, 'large.tar.gz');
    const archive = pack();
    const writing = pipeline(
      Readable.from(archive),
      createGzip({ level: 1 }),
      createWriteStream(path),
    );
    await addRepeated(archive, 'data/random.bin', randomBytes(MiB), randomMiB);
    await addRepeated(archive, 'data/zeros.bin', Buffer.alloc(MiB), zeroMiB);
    archive.finalize();
    await writing;
    assert.ok((await stat(path)).size > randomMiB * MiB);

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    let installed: string;
    try {
      installed = await store.install('Large', '1.0.0', path);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);

    assert.equal((await stat(join(installed, 'data/random.bin'))).size, randomMiB * MiB);
    assert.equal((await stat(join(installed, 'data/zeros.bin'))).size, zeroMiB * MiB);
    const growth = (peak - before) / MiB;
    assert.ok(growth < 50, `RSS grew by ${growth.toFixed(1)} MiB while unpacking`);
  });
});
