/**
 * Artifacts: one large file (1 GiB; 100 MiB quick) marked by the step and sent to the server, timed
 * from the step's end (`collecting`) to the artifact event stored, with the agent's peak resident
 * memory. Two baselines: the floor is one read, hash and write of the same bytes on this disk; the
 * reference upload (bare-upload.ts) does what an upload by PROTOCOL.md section 6 must do, with
 * plain ws and nothing else (a hash pass before the first byte, masked frames, a receiver that
 * hashes and writes).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { bareUpload } from './bare-upload.js';
import { demoTask, makeTempDir, uniqueId, whenEvent, withEnv } from './env.js';
import { MB, MIB, now, ProcessWatch } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';

export const title = 'Artifacts: one large file, step end → artifact stored on the server';

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const size = options.quick ? 100 * MIB : 1024 * MIB;
  // Three, so that the median is a repetition and not the mean of two: one repetition slowed by
  // the host moves a mean of two by half its loss (docs/performance.md, round 13).
  const repetitions = 3;
  const floorMBps: number[] = [];
  const bareMBps: number[] = [];
  const uploadMBps: number[] = [];
  const uploadS: number[] = [];
  const hashS: number[] = [];
  const transferS: number[] = [];
  const growth: number[] = [];
  const agentCpu: number[] = [];

  const scratch = await makeTempDir('artifact-floor');
  try {
    const source = join(scratch, 'source.bin');
    await writeZeros(source, size);
    await withEnv({ capacity: 1 }, async (env) => {
      // When the agent announced each blob: the end of its hash pass (PROTOCOL.md section 6 puts
      // the SHA-256 in `blob-begin`, before any of the content).
      const announced = new Map<string, number>();
      env.server.on('blob-begin', (sha256, at) => announced.set(sha256, at));
      await env.run(demoTask(uniqueId('artifacts-warmup'), 'echo warm'));
      for (let rep = 0; rep < repetitions; rep++) {
        floorMBps.push(size / MB / ((await copyAndHash(source, join(scratch, 'copy.bin'))) / 1000));
        await rm(join(scratch, 'copy.bin'), { force: true });
        // Before cuttle, then after: how recently memory was freed moves both (performance.md).
        const reference = async (): Promise<void> => {
          bareMBps.push(size / MB / ((await bareUpload(source, scratch)) / 1000));
        };
        if (rep % 2 === 0) await reference();

        // Different content each time (a first line), so nothing can be skipped as already held.
        const script =
          `{ echo 'rep ${options.runId} ${rep}'; head -c ${size} /dev/zero; } > bench.bin\n` +
          'new_octopusartifact "$PWD/bench.bin"';
        let collecting: Promise<number> | undefined;
        let stored: Promise<number> | undefined;
        const watch = await ProcessWatch.start(env.pid, 50);
        const { handle } = await env.run(
          demoTask(uniqueId('artifacts'), script),
          options.quick ? 120_000 : 600_000,
          {
            onTask: (task) => {
              collecting = whenEvent(task, (e) => e.kind === 'state' && e.state === 'collecting');
              stored = whenEvent(task, (e) => e.kind === 'artifact');
            },
          },
        );
        const seen = await watch.stop();
        if (collecting === undefined || stored === undefined) throw new Error('no handle');
        const [collectingAt, storedAt] = [await collecting, await stored];
        const ms = storedAt - collectingAt;
        const artifact = handle.events.find((e) => e.kind === 'artifact');
        if (artifact === undefined || artifact.kind !== 'artifact' || artifact.size < size) {
          throw new Error('the server holds no artifact of the expected size');
        }
        const announcedAt = announced.get(artifact.sha256);
        if (announcedAt === undefined) throw new Error('the server saw no blob-begin for it');
        uploadS.push(ms / 1000);
        hashS.push((announcedAt - collectingAt) / 1000);
        transferS.push((storedAt - announcedAt) / 1000);
        uploadMBps.push(artifact.size / MB / (ms / 1000));
        growth.push((seen.peak - seen.rssStart) / MIB);
        if (rep % 2 === 1) await reference();
        agentCpu.push(seen.cpuSeconds);
        await rm(await env.server.artifactPath(artifact.sha256), { force: true });
      }
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  report.row('floor: read + SHA-256 + write on this disk', 'MB/s', floorMBps);
  report.row('reference upload (plain ws, the same steps)', 'MB/s', bareMBps);
  report.row('cuttle: collecting → artifact stored', 's', uploadS);
  report.row('cuttle: hash pass (collecting → blob-begin)', 's', hashS);
  report.row('cuttle: transfer (blob-begin → artifact stored)', 's', transferS);
  const mbps = report.compared(
    'cuttle: upload throughput',
    'MB/s',
    uploadMBps,
    'floor: read + SHA-256 + write on this disk',
  );
  report.compared(
    'cuttle vs the reference upload',
    'MB/s',
    uploadMBps,
    'reference upload (plain ws, the same steps)',
  );
  const peak = report.row('cuttle: agent peak RSS growth', 'MiB', growth);
  report.row('cuttle: agent CPU for the task', 's', agentCpu);
  report.note(
    `${(size / MIB).toFixed(0)} MiB of zeros (no compression on the wire, so content does not ` +
      'matter); the timed span includes the agent hashing the file into its journal. The ' +
      'reference upload (bare-upload.ts) is two processes of plain ws doing what the protocol ' +
      'requires and no more, timed from its hash pass to its receiver answering, on the floor file.',
  );
  report.goal(
    'upload at least 300 MB/s over loopback',
    mbps.median >= 300,
    `${mbps.median.toFixed(0)} MB/s`,
  );
  report.goal(
    'agent memory growth under 64 MiB',
    peak.max < 64,
    `peak growth ${peak.max.toFixed(1)} MiB (max of ${peak.n})`,
  );
}

async function writeZeros(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const block = Buffer.alloc(MIB);
    for (let written = 0; written < size; written += block.length) {
      await handle.write(block, 0, Math.min(block.length, size - written));
    }
  } finally {
    await handle.close();
  }
}

/** One read, a SHA-256 and one write of the file: milliseconds. */
async function copyAndHash(source: string, target: string): Promise<number> {
  const start = now();
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(source, { highWaterMark: MIB }),
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    }),
    createWriteStream(target),
  );
  hash.digest('hex');
  return now() - start;
}
