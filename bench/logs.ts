/**
 * Logs: a step printing many 40-byte lines (200 MB; 20 MB quick), with 10 sensitive values to mask,
 * streamed to the server; against the same command's output read straight from the engine (log
 * driver none, attached). MB/s end to end and the agent's CPU seconds.
 */
import { DEMO_IMAGE } from '../images/index.js';
import { MASK } from '../agent/masker.js';
import type { TaskEvent } from '../protocol/index.js';
import { apiAttachedRun } from './engine.js';
import { demoTask, uniqueId, withEnv } from './env.js';
import { MB, ProcessWatch } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';

export const title = 'Logs: 40-byte lines with 10 secrets to mask, step → server';

const LINE = 'cuttle-bench-log-line-0123456789abcdefg'; // 39 characters + '\n' = 40 bytes
const SECRETS = 10;

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const totalBytes = (options.quick ? 20 : 200) * MB;
  const repetitions = options.quick ? 2 : 3;
  const secrets = Array.from(
    { length: SECRETS },
    (_, i) => `s3cr3t-${options.runId}-${i}-${'x'.repeat(8 + i)}`,
  );
  // Ten blocks of `yes` lines, each followed by a line that prints one of the secrets.
  const chunk = Math.floor(totalBytes / SECRETS / 40) * 40;
  const script = secrets
    .map((secret) => `yes '${LINE}' | head -c ${chunk}\necho 'the secret is ${secret} here'`)
    .join('\n');
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

    // A fresh server and agent per repetition: the reference server keeps every event in memory.
    await withEnv({ capacity: 1 }, async (env) => {
      await env.run(demoTask(uniqueId('logs-warmup'), 'echo warm'));
      let lines = 0;
      let bytes = 0;
      let masked = 0;
      let leaked = 0;
      const count = (event: TaskEvent): void => {
        if (event.kind !== 'log' || event.stream !== 'stdout') return;
        lines += event.lines.length;
        for (const line of event.lines) {
          bytes += line.length + 1;
          if (line.length === LINE.length) continue;
          if (line.includes(MASK)) masked += 1;
          if (secrets.some((secret) => line.includes(secret))) leaked += 1;
        }
      };
      const watch = await ProcessWatch.start(env.pid);
      const cpuBefore = process.cpuUsage();
      const { ms } = await env.run(
        demoTask(uniqueId('logs'), script, { variables }),
        options.quick ? 120_000 : 600_000,
        (handle) => handle.on('event', count),
      );
      const cpuUsed = process.cpuUsage(cpuBefore);
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
      serverCpu.push((cpuUsed.user + cpuUsed.system) / 1e6);
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
  report.row('reference server (bench process) CPU', 's', serverCpu);
  report.row('cuttle: agent peak RSS growth', 'MiB', agentPeak);
  report.note(
    `${(totalBytes / MB).toFixed(0)} MB in ${expectedLines} lines; agent CPU per MB: ` +
      `${((cpu.median / totalBytes) * MB * 1000).toFixed(1)} ms. The server runs in the bench ` +
      'process and shares the 2 cores with the agent, the engine and the step.',
  );
  report.goal(
    'at least 100 MB/s end to end with masking on',
    mbps.median >= 100,
    `${mbps.median.toFixed(1)} MB/s`,
  );
}
