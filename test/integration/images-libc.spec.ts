import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';
import { CuttleError } from '../../protocol/errors.js';
import {
  AGENT_LABEL,
  DEMO_IMAGE,
  DockerClient,
  ImageResolver,
  OPEN_IMAGE_POLICY,
  detectImageLibc,
  ensureDemoImage,
  inspectImageLibc,
} from '../../images/index.js';
import { TEST_LABEL, testAgentId } from '../support/docker.js';

const run = promisify(execFile);

const MUSL_LIBRARY = '/lib/x86_64-linux-musl/libc.so';
const GLIBC_LIBRARY = '/lib/x86_64-linux-gnu/libc.so.6';
const GLIBC_LOADER = '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2';

type Entry = { name: string; content?: Buffer | string; link?: string; mode?: number };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const archive = pack();
  for (const entry of entries) {
    if (entry.link !== undefined) {
      archive.entry({ name: entry.name, type: 'symlink', linkname: entry.link });
    } else if (entry.content === undefined) {
      archive.entry({ name: entry.name, type: 'directory', mode: 0o755 });
    } else {
      archive.entry({ name: entry.name, mode: entry.mode ?? 0o644 }, entry.content);
    }
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Debian's musl package gives the musl loader; installs it when absent and possible. */
async function muslLibrary(): Promise<string | undefined> {
  if (await exists(MUSL_LIBRARY)) return MUSL_LIBRARY;
  if (process.getuid?.() !== 0) return undefined;
  try {
    await run('apt-get', ['install', '-y', '-q', 'musl'], {
      timeout: 120_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch {
    return undefined;
  }
  return (await exists(MUSL_LIBRARY)) ? MUSL_LIBRARY : undefined;
}

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

describe('images: libc of an image, from its files', function () {
  this.timeout(120_000);
  const client = DockerClient.connect();
  const agentId = testAgentId();
  const resolver = new ImageResolver(client, OPEN_IMAGE_POLICY, { agentId });
  const muslImage = `cuttle-test-musl:${agentId}`;
  const glibcImage = `cuttle-test-glibc:${agentId}`;
  let haveMusl = false;
  let haveGlibc = false;

  before(async function () {
    await ensureDemoImage(client);
    const labels = { [TEST_LABEL]: '1' };
    const dockerfile = 'FROM scratch\nCOPY rootfs/ /\n';
    const musl = process.arch === 'x64' ? await muslLibrary() : undefined;
    if (musl !== undefined) {
      // Standing in for Alpine: musl's loader (which is its libc) where Alpine has it.
      await client.buildImage({
        tag: muslImage,
        labels,
        context: await tarOf([
          { name: 'Dockerfile', content: dockerfile },
          { name: 'rootfs/lib/ld-musl-x86_64.so.1', content: await readFile(musl), mode: 0o755 },
          { name: 'rootfs/lib/libc.musl-x86_64.so.1', link: 'ld-musl-x86_64.so.1' },
        ]),
      });
      haveMusl = true;
    }
    if (process.arch === 'x64' && (await exists(GLIBC_LIBRARY)) && (await exists(GLIBC_LOADER))) {
      // Laid out like Debian: merged /usr (/lib is a link) and /etc/os-release a link.
      await client.buildImage({
        tag: glibcImage,
        labels,
        context: await tarOf([
          { name: 'Dockerfile', content: dockerfile },
          {
            name: 'rootfs/usr/lib/x86_64-linux-gnu/libc.so.6',
            content: await readFile(GLIBC_LIBRARY),
          },
          {
            name: 'rootfs/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
            content: await readFile(GLIBC_LOADER),
            mode: 0o755,
          },
          { name: 'rootfs/lib', link: 'usr/lib' },
          {
            name: 'rootfs/lib64/ld-linux-x86-64.so.2',
            link: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
          },
          {
            name: 'rootfs/usr/lib/os-release',
            content:
              'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n',
          },
          { name: 'rootfs/etc/os-release', link: '../usr/lib/os-release' },
        ]),
      });
      haveGlibc = true;
    }
  });

  after(async function () {
    await client.removeImage(muslImage).catch(() => undefined);
    await client.removeImage(glibcImage).catch(() => undefined);
  });

  it('finds musl in a musl image and refuses it for a glibc tool', async function () {
    if (!haveMusl) {
      console.log('      skipped: no musl (apt-get install musl) or not x86-64');
      this.skip();
    }
    assert.equal(await detectImageLibc(client, muslImage), 'musl');
    const error = await rejectsWithCode(
      resolver.checkToolLibc(muslImage, { name: 'calamari', version: '28.1.0', libc: 'glibc' }),
      'image-incompatible',
    );
    assert.match(error.message, new RegExp(`the image ${muslImage} is musl-based`));
    assert.match(error.message, /found \/lib\/ld-musl-x86_64\.so\.1/);
    assert.match(error.message, /calamari 28\.1\.0 needs glibc/);
    assert.match(error.message, /Debian or Ubuntu/);
    const ok = await resolver.checkToolLibc(muslImage, { name: 'static-tool', libc: 'musl' });
    assert.equal(ok?.libc, 'musl');
  });

  it('finds glibc through merged-/usr links, with the OS name', async function () {
    if (!haveGlibc) {
      console.log('      skipped: the host has no x86-64 glibc to copy');
      this.skip();
    }
    const report = await inspectImageLibc(client, glibcImage);
    assert.deepEqual(report, {
      libc: 'glibc',
      evidence: '/lib/x86_64-linux-gnu/libc.so.6',
      os: 'Debian GNU/Linux 12 (bookworm)',
    });
    assert.equal(
      (await resolver.checkToolLibc(glibcImage, { name: 'calamari', libc: 'glibc' }))?.libc,
      'glibc',
    );
    const error = await rejectsWithCode(
      resolver.checkToolLibc(glibcImage, { name: 'calamari', libc: 'musl' }),
      'image-incompatible',
    );
    assert.match(error.message, /glibc-based \(Debian GNU\/Linux 12 \(bookworm\); found/);
    assert.match(error.message, /such as Alpine/);
  });

  it('says unknown for a static image without a C library, and lets the tool try', async function () {
    assert.equal(await detectImageLibc(client, DEMO_IMAGE), 'unknown');
    assert.equal(
      (await resolver.checkToolLibc(DEMO_IMAGE, { name: 'calamari', libc: 'glibc' }))?.libc,
      'unknown',
    );
    assert.equal(await resolver.checkToolLibc(DEMO_IMAGE, { name: 'no-libc-declared' }), undefined);
  });

  it('leaves no inspection container behind', async function () {
    assert.deepEqual(await client.listContainers({ agentId }), []);
    assert.deepEqual(await client.listContainers({ agentId: 'libc-check' }), []);
    assert.ok((await client.listImages({ [AGENT_LABEL]: agentId })).length === 0);
  });
});
