/**
 * Caches: a second task with the same inline Dockerfile, the same Git commit (a local git daemon),
 * the same package (500 MB; 50 MB quick) and the same tool (a 40 MiB bundle of 16 files; 4 MiB
 * quick) — time and bytes transferred, against the same step in a plain local image. A hit should
 * transfer nothing and add under 100 ms.
 */
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEMO_IMAGE, type DockerClient } from '../images/index.js';
import type { SubmitInput } from '../protocol/reference-server/index.js';
import { startGitServer, type TestGitServer } from '../test/support/git-server.js';
import { BENCH_LABEL } from './engine.js';
import { demoTask, makeTempDir, uniqueId, withEnv, type BenchEnv } from './env.js';
import { interleave, MB, MIB } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';

export const title = 'Caches: a second task with the same Dockerfile, Git commit, package and tool';

const PLAIN = 'plain image, same step';

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const packageBytes = (options.quick ? 50 : 500) * MB;
  const hits = options.quick ? 3 : 5;
  const scratch = await makeTempDir('caches');
  let git: TestGitServer | string | undefined;
  try {
    git = await startGitServer().catch((error: unknown) => `git daemon failed: ${String(error)}`);
    await withEnv({ capacity: 1 }, async (env) => {
      // Bytes the server sent on blob requests (packages), by content hash.
      const blobSizes = new Map<string, number>();
      let blobBytesSent = 0;
      env.server.on('blob-request', (sha256) => {
        blobBytesSent += blobSizes.get(sha256) ?? 0;
      });
      const step = 'test -d "$PWD"';
      const measure =
        (input: () => SubmitInput) =>
        async (): Promise<{ ms: number; bytes: number; states: string[] }> => {
          const before = blobBytesSent;
          const { ms, handle } = await env.run(input(), 300_000);
          const states = handle.events.flatMap((e) => (e.kind === 'state' ? [e.state] : []));
          return { ms, bytes: blobBytesSent - before, states };
        };

      // Inline Dockerfile, unique to this run so that the first task builds.
      const dockerfile =
        `FROM ${DEMO_IMAGE}\nLABEL ${BENCH_LABEL}=${options.runId}\n` +
        `RUN echo ${options.runId} > /bench-marker\n`;
      const dockerfileTask = measure(() =>
        demoTask(uniqueId('cache-dockerfile'), step, {
          container: { dockerfile, pullPolicy: 'always' },
        }),
      );

      // A package, registered with the server as a blob.
      const packagePath = join(scratch, 'bench.pkg');
      await writePackage(packagePath, packageBytes);
      const blob = await env.server.addBlob(packagePath);
      await rm(packagePath, { force: true });
      blobSizes.set(blob.sha256, blob.size);
      const packageTask = measure(() =>
        demoTask(uniqueId('cache-package'), `test -s packages/bench.pkg`, {
          packages: [{ name: 'bench.pkg', sha256: blob.sha256, size: blob.size }],
        }),
      );

      // A tool bundle (a .tar.gz of executables), registered with the server as a blob. Its
      // version is unique to this run, so that the first task unpacks it.
      const toolPath = join(scratch, 'bench-tool.tar.gz');
      await writeToolBundle(toolPath, (options.quick ? 4 : 40) * MIB);
      const toolBlob = await env.server.addBlob(toolPath);
      await rm(toolPath, { force: true });
      blobSizes.set(toolBlob.sha256, toolBlob.size);
      const tool = { name: 'BenchTool', version: `1.0.0-${options.runId}`, bundle: toolBlob };
      const toolTask = measure(() =>
        demoTask(uniqueId('cache-tool'), 'test -x "$CUTTLE_TOOL_HOME/bin/tool-0"', { tool }),
      );

      // A Dockerfile at a Git commit.
      let gitTask: ReturnType<typeof measure> | undefined;
      if (typeof git === 'string') {
        report.note(`Git case skipped: ${git}`);
      } else if (git !== undefined) {
        await git.createRepo('bench', {
          Dockerfile: `FROM ${DEMO_IMAGE}\nLABEL ${BENCH_LABEL}=${options.runId}\nCOPY marker /marker\n`,
          marker: `${options.runId}\n`,
        });
        const url = git.url('bench');
        gitTask = measure(() =>
          demoTask(uniqueId('cache-git'), step, {
            container: { git: { url, ref: 'main' }, pullPolicy: 'always' },
          }),
        );
      }
      const plainTask = measure(() => demoTask(uniqueId('cache-plain'), step));

      await plainTask(); // warm-up
      const misses = {
        dockerfile: await dockerfileTask(),
        package: await packageTask(),
        tool: await toolTask(),
        ...(gitTask === undefined ? {} : { git: await gitTask() }),
      };
      if (!misses.dockerfile.states.includes('building')) {
        report.note('the first Dockerfile task did not build: an image from an earlier run?');
      }
      if (misses.package.bytes !== blob.size) {
        throw new Error(`the first package task transferred ${misses.package.bytes} bytes`);
      }
      if (misses.tool.bytes !== toolBlob.size) {
        throw new Error(`the first tool task transferred ${misses.tool.bytes} bytes`);
      }

      const hitBytes = new Map<string, number[]>();
      const hitBuilt = new Map<string, number>();
      const asMs =
        (name: string, task: () => Promise<{ ms: number; bytes: number; states: string[] }>) =>
        async (): Promise<number> => {
          const outcome = await task();
          hitBytes.set(name, [...(hitBytes.get(name) ?? []), outcome.bytes]);
          if (outcome.states.includes('building')) {
            hitBuilt.set(name, (hitBuilt.get(name) ?? 0) + 1);
          }
          return outcome.ms;
        };
      const measures: Record<string, () => Promise<number>> = {
        plain: asMs('plain', plainTask),
        dockerfile: asMs('dockerfile', dockerfileTask),
        package: asMs('package', packageTask),
        tool: asMs('tool', toolTask),
      };
      if (gitTask !== undefined) measures.git = asMs('git', gitTask);
      const samples = await interleave(hits, measures);

      const plain = report.row(PLAIN, 'ms', samples.get('plain') ?? []);
      const parts: {
        key: 'dockerfile' | 'package' | 'tool' | 'git';
        label: string;
        bytes: boolean;
      }[] = [
        { key: 'dockerfile', label: 'inline Dockerfile', bytes: false },
        { key: 'git', label: 'Dockerfile at a Git commit', bytes: false },
        { key: 'package', label: `package of ${(packageBytes / MB).toFixed(0)} MB`, bytes: true },
        {
          key: 'tool',
          label: `tool bundle of ${(toolBlob.size / MB).toFixed(0)} MB`,
          bytes: true,
        },
      ];
      for (const part of parts) {
        const hitSamples = samples.get(part.key);
        const miss = misses[part.key];
        if (hitSamples === undefined || miss === undefined) continue;
        report.compared(`${part.label}: first task (miss)`, 'ms', [miss.ms], PLAIN);
        const hit = report.compared(`${part.label}: second task (hit)`, 'ms', hitSamples, PLAIN);
        const added = hit.median - plain.median;
        if (part.bytes) {
          report.row(`${part.label}: bytes sent on miss`, 'MB', [miss.bytes / MB]);
          const sent = hitBytes.get(part.key) ?? [];
          report.row(`${part.label}: bytes sent on hit`, 'B', sent);
          report.goal(
            `${part.label}: a hit transfers nothing`,
            sent.every((b) => b === 0),
            `${Math.max(0, ...sent)} bytes`,
          );
        } else {
          const built = hitBuilt.get(part.key) ?? 0;
          report.goal(
            `${part.label}: a hit does not build`,
            built === 0,
            `${built} of ${hitSamples.length} hits built`,
          );
        }
        report.goal(
          `${part.label}: a hit adds under 100 ms`,
          added < 100,
          `${added >= 0 ? '+' : ''}${added.toFixed(0)} ms (median ${hit.median.toFixed(0)} vs ${plain.median.toFixed(0)} ms)`,
        );
      }
      if (gitTask !== undefined) {
        report.note(
          'Git: bytes are not counted (the agent asks the git daemon for the commit with ' +
            'ls-remote on every task; the engine clones only on a miss).',
        );
      }
      report.note(
        'tool: a hit is a tool version already unpacked in the agent home; the first task ' +
          'transfers the bundle and unpacks it once.',
      );
      await removeBenchImages(env, options.runId);
    });
  } finally {
    if (git !== undefined && typeof git !== 'string') await git.dispose();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Random content (1 MiB of it, repeated): no layer of the stack can shortcut it. */
async function writePackage(path: string, size: number): Promise<void> {
  const block = randomBytes(MIB);
  const handle = await open(path, 'w');
  try {
    for (let written = 0; written < size; written += block.length) {
      await handle.write(block, 0, Math.min(block.length, size - written));
    }
  } finally {
    await handle.close();
  }
}

/** A tool bundle: 16 executables of random content (gzip cannot shrink it), as a .tar.gz. */
async function writeToolBundle(path: string, size: number): Promise<void> {
  const archive = pack();
  const files = 16;
  const fileSize = Math.ceil(size / files);
  const packing = pipeline(archive, createGzip({ level: 1 }), createWriteStream(path));
  for (let i = 0; i < files; i++) {
    const content = Buffer.concat([Buffer.from('#!/bin/sh\nexit 0\n'), randomBytes(fileSize)]);
    await new Promise<void>((resolve, reject) =>
      archive.entry({ name: `bin/tool-${i}`, mode: 0o755 }, content, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }
  archive.finalize();
  await packing;
}

/** The images this run built (they carry the run's label). */
async function removeBenchImages(env: BenchEnv, runId: string): Promise<void> {
  const docker: DockerClient = env.docker;
  for (const image of await docker.listImages({ [BENCH_LABEL]: runId })) {
    for (const tag of image.repoTags) await docker.removeImage(tag).catch(() => undefined);
  }
}
