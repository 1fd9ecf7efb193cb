/**
 * The helpers run by the host's own shells (dash as `sh`, and bash): what `new_octopusartifact`
 * prints. The integration spec runs them in containers; this one covers how the length is found.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { helpersScript } from '../../agent/script-helpers.js';

const run = promisify(execFile);

/** The attributes of the one service message in `output`, decoded from base64. */
function attributes(output: string): Map<string, string> {
  const match = /^##octopus\[createArtifact (.*)\]$/m.exec(output);
  assert.ok(match?.[1] !== undefined, `no createArtifact message in: ${output}`);
  const values = new Map<string, string>();
  for (const [, name, value] of match[1].matchAll(/(\w+)='([^']*)'/g)) {
    if (name !== undefined && value !== undefined) {
      values.set(name, Buffer.from(value, 'base64').toString('utf8'));
    }
  }
  return values;
}

describe('script helpers in the host shells', function () {
  this.timeout(30_000);
  let dir: string;
  let helpers: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-helpers-'));
    const variables = join(dir, 'variables');
    await writeFile(variables, '');
    helpers = join(dir, 'helpers.sh');
    await writeFile(helpers, helpersScript(variables));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * A PATH as in a busybox image: busybox's wc, which reads the whole file (GNU wc -c asks the
   * inode, so the host's own would hide a helper that counts by reading), and stat if asked.
   */
  async function imagePath(withStat: boolean): Promise<string> {
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const tools = ['base64', 'basename', 'tr', ...(withStat ? ['stat'] : [])];
    for (const tool of [...tools, 'busybox']) {
      const { stdout } = await run('sh', ['-c', `command -v ${tool}`]);
      await symlink(stdout.trim(), join(bin, tool));
    }
    await symlink(join(bin, 'busybox'), join(bin, 'wc'));
    return bin;
  }

  async function markArtifact(
    shell: string,
    path: string,
    args: string,
  ): Promise<Map<string, string>> {
    // timeout(1) signals its whole process group: a helper that reads the file leaves no wc behind.
    const { stdout } = await run(
      '/usr/bin/timeout',
      ['20', shell, '-c', `. ${helpers}; new_octopusartifact ${args}`],
      { cwd: dir, env: { PATH: path } },
    );
    return attributes(stdout);
  }

  for (const shell of ['/bin/sh', '/bin/bash']) {
    it(`${shell}: new_octopusartifact takes the length from the inode, not by reading the file`, async () => {
      // A sparse file of 1 TiB: reading it through takes far longer than the time-out.
      const size = 1024 ** 4;
      await writeFile(join(dir, 'huge.bin'), '');
      await truncate(join(dir, 'huge.bin'), size);
      const message = await markArtifact(shell, await imagePath(true), 'huge.bin');
      assert.equal(message.get('path'), join(dir, 'huge.bin'));
      assert.equal(message.get('name'), 'huge.bin');
      assert.equal(message.get('length'), String(size));
    });
  }

  it('falls back to wc -c where the image has no stat', async () => {
    await writeFile(join(dir, 'report.txt'), 'twelve bytes');
    const message = await markArtifact('/bin/sh', await imagePath(false), 'report.txt renamed.txt');
    assert.equal(message.get('name'), 'renamed.txt');
    assert.equal(message.get('length'), '12');
  });
});
