import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runningInContainer } from '../../images/home-mount-check.js';

describe('runningInContainer', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cuttle-container-root-'));
    await mkdir(join(root, 'proc', '1'), { recursive: true });
    await mkdir(join(root, 'run'), { recursive: true });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is false on a host (cgroup v2 root, no marker files)', async () => {
    await writeFile(join(root, 'proc', '1', 'cgroup'), '0::/init.scope\n');
    assert.equal(runningInContainer(root), false);
  });

  it("is true with Docker's /.dockerenv or Podman's /run/.containerenv", async () => {
    await writeFile(join(root, '.dockerenv'), '');
    assert.equal(runningInContainer(root), true);
    await rm(join(root, '.dockerenv'));
    await writeFile(join(root, 'run', '.containerenv'), '');
    assert.equal(runningInContainer(root), true);
  });

  for (const line of [
    '12:memory:/docker/0123456789abcdef',
    '0::/system.slice/docker-0123456789abcdef.scope',
    '1:name=systemd:/kubepods/burstable/pod1234/0123456789abcdef',
    '0::/system.slice/cri-containerd-0123456789abcdef.scope',
  ]) {
    it(`is true when PID 1's cgroup is ${line}`, async () => {
      await writeFile(join(root, 'proc', '1', 'cgroup'), `${line}\n`);
      assert.equal(runningInContainer(root), true);
    });
  }

  it('is false when /proc/1/cgroup cannot be read', () => {
    assert.equal(runningInContainer(join(root, 'missing')), false);
  });
});
