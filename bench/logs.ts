/**
 * Logs: a step printing many 40-byte lines (200 MB; 20 MB quick), with 10 sensitive values to mask,
 * streamed to the server; against the same command's output read straight from the engine (log
 * driver none, attached). MB/s end to end and the agent's CPU seconds.
 */
import { DEMO_IMAGE } from '../images/index.js';
import { MASK } from '../agent/masker.js';
import { apiAttachedRun } from './engine.js';
import { demoTask, uniqueId, withEnv } from './env.js';
import { cpuSeconds, MB, ProcessWatch } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';
import type { BenchEvent } from './server-process.js';

export const title = 'Logs: 40-byte lines with 10 secrets to mask, step → server';

const LINE = 'cuttle-bench-log-line-0123456789abcdefg'; // 39 characters + '\n' = 40 bytes
const SECRETS = 10;
const BLOCK = 1000 * 40; // a thousand lines

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const totalBytes = (options.quick ? 20 : 200) * MB;
  const repetitions = options.quick ? 2 : 3;
  const secrets = Array.from(
    { length: SECRETS },
    (_, i) => `s3cr3t-${options.runId}-${i}-${'x'.repeat(8 + i)}`,
  );
  // Ten blocks of `yes` lines, each followed by a line that prints one of the secrets. `dd` copies
  // the lines in whole blocks; busybox `head -c` copies a byte at a time (getc/putchar), which cost
  // 1.1 CPU seconds per 200 MB, as much as the agent, and so measured busybox on these two cores.
  const chunk = Math.floor(totalBytes / SECRETS / BLOCK) * BLOCK;
  const logScript = (chunkBytes: number): string =>
    secrets
      .map(
        (secret) =>
          `yes '${LINE}' | dd bs=${BLOCK} count=${chunkBytes / BLOCK} iflag=fullblock 2>/dev/null\n` +
          `echo 'the secret is ${secret} here'`,
      )
      .join('\n');
  const script = logScript(chunk);
  const expectedLines = (chunk / 40 + 1) * SECRETS;
  const variables = secrets.map((value, i) => ({ name: `Secret${i}`, value, sensitive: true }));

  const agentMs: number[] = [];
  const agentMBps: number[] = [];
  const agentCpu: number[] = [];
  const serverCpu: number[] = [];
  const agentPeak: number[] = [];
  const engineMs: number[] = [];
  const engineMBps: number[] = [];
  for (let rep = 0; rep < repetitions; rep++) {
    // Straight from the engine: the same command, its output read by attaching.
    const engine = await apiAttachedRun(DEMO_IMAGE, ['sh', '-c', script]);
    if (engine.bytes < chunk * SECRETS) {
      throw new Error(`the engine baseline read ${engine.bytes} bytes, expected ${totalBytes}`);
    }
    engineMs.push(engine.ms);
    engineMBps.push(engine.bytes / MB / (engine.ms / 1000));

    // A fresh server and agent per repetition, each first given a tenth of the log: both are
    // long-running processes, and what is measured is their steady state, not V8 compiling the
    // log path (a cold server process spent ~0.25 s more CPU on the 200 MB).
    await withEnv({ capacity: 1 }, async (env) => {
      await env.run(
        demoTask(uniqueId('logs-warmup'), logScript(Math.floor(chunk / 10 / BLOCK) * BLOCK), {
          variables,
        }),
        120_000,
        { usualLineLength: LINE.length },
      );
      let lines = 0;
      let bytes = 0;
      let masked = 0;
      let leaked = 0;
      // The server process forwards the lines that are not LINE, and counts the rest.
      const count = (event: BenchEvent): void => {
        if (event.kind !== 'log' || event.stream !== 'stdout') return;
        lines += event.lineCount;
        bytes += event.bytes;
        for (const line of event.lines) {
          if (line.includes(MASK)) masked += 1;
          if (secrets.some((secret) => line.includes(secret))) leaked += 1;
        }
      };
      const watch = await ProcessWatch.start(env.pid);
      const serverCpuBefore = await cpuSeconds(env.server.pid);
      const { ms } = await env.run(
        demoTask(uniqueId('logs'), script, { variables }),
        options.quick ? 120_000 : 600_000,
        { usualLineLength: LINE.length, onTask: (task) => task.on('event', count) },
      );
      const serverCpuUsed = (await cpuSeconds(env.server.pid)) - serverCpuBefore;
      const seen = await watch.stop();
      if (lines !== expectedLines || masked !== SECRETS || leaked !== 0) {
        throw new Error(
          `the server received ${lines} lines (expected ${expectedLines}), ${masked} masked ` +
            `(expected ${SECRETS}), ${leaked} with a secret in clear`,
        );
      }
      agentMs.push(ms);
      agentMBps.push(bytes / MB / (ms / 1000));
      agentCpu.push(seen.cpuSeconds);
      serverCpu.push(serverCpuUsed);
      agentPeak.push((seen.peak - seen.rssStart) / (1024 * 1024));
    });
  }
  report.row(
    'engine, attached (log driver none): time',
    's',
    engineMs.map((ms) => ms / 1000),
  );
  report.row('engine, attached: throughput', 'MB/s', engineMBps);
  report.compared(
    'cuttle: task → result',
    's',
    agentMs.map((ms) => ms / 1000),
    'engine, attached (log driver none): time',
  );
  const mbps = report.compared(
    'cuttle: throughput, masked',
    'MB/s',
    agentMBps,
    'engine, attached: throughput',
  );
  const cpu = report.row('cuttle: agent CPU', 's', agentCpu);
  report.row('reference server process CPU', 's', serverCpu);
  report.row('cuttle: agent peak RSS growth', 'MiB', agentPeak);
  report.note(
    `${(totalBytes / MB).toFixed(0)} MB in ${expectedLines} lines; agent CPU per MB: ` +
      `${((cpu.median / totalBytes) * MB * 1000).toFixed(1)} ms. The reference server runs in its ` +
      'own process and shares the 2 cores with the agent, the engine and the step.',
  );
  report.goal(
    'at least 100 MB/s end to end with masking on',
    mbps.median >= 100,
    `${mbps.median.toFixed(1)} MB/s`,
  );
}
