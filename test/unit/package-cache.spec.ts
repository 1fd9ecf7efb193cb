import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackageCache } from '../../workspace/index.js';

const sha = (c: string): string => c.repeat(64);

describe('PackageCache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-packages-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('evicts the least recently used packages beyond its limit, never one in use', async () => {
    const cache = new PackageCache(dir);
    const ages = { a: 400, b: 300, c: 200, d: 100 }; // seconds since last use
    for (const [name, age] of Object.entries(ages)) {
      await writeFile(cache.pathOf(sha(name)), Buffer.alloc(1000));
      const when = new Date(Date.now() - age * 1000);
      await utimes(cache.pathOf(sha(name)), when, when);
    }
    const removed = await cache.evict(2000, new Set([sha('a')]));
    assert.deepEqual(removed, [sha('b'), sha('c')], 'oldest first, sparing the one in use');
    assert.deepEqual((await readdir(dir)).sort(), [sha('a'), sha('d')]);
  });

  it('places a package as a hard link and counts it as used', async () => {
    const cache = new PackageCache(dir);
    await writeFile(cache.pathOf(sha('e')), 'content');
    await cache.sealed(sha('e'));
    const old = new Date(Date.now() - 3600_000);
    await utimes(cache.pathOf(sha('e')), old, old);
    const work = join(dir, 'work');
    const placed = await cache.place(sha('e'), work, 'app.tgz');
    assert.equal(placed, join(work, 'packages', 'app.tgz'));
    const [source, target] = await Promise.all([stat(cache.pathOf(sha('e'))), stat(placed)]);
    assert.equal(source.ino, target.ino, 'a hard link, not a copy');
    assert.equal(target.mode & 0o777, 0o444);
    assert.ok(source.mtimeMs > old.getTime() + 1000, 'placing refreshes its recency');
  });
});
