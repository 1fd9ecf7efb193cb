/**
 * Idle: the agent connected and idle (60 s; 10 s quick), after one task ran: its resident memory,
 * sampled every second, and its CPU use over the window; then its memory again after a step with
 * busy output (20 s; 5 s quick). The server uses the protocol's default heartbeat (15 s), as a real
 * one would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { demoTask, uniqueId, withEnv } from './env.js';
import { cpuSeconds, memory, MIB } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';

export const title = 'Idle: connected, no work';

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const windowS = options.quick ? 10 : 60;
  const busyWindowS = options.quick ? 5 : 20;
  await withEnv({ capacity: 2 }, async (env) => {
    const startup = await memory(env.pid);
    await env.run(demoTask(uniqueId('idle-warmup'), 'echo warm'));
    await sleep(2000); // let the task's own work settle
    const rss: number[] = [];
    const cpuStart = await cpuSeconds(env.pid);
    const start = Date.now();
    for (let s = 0; s < windowS; s++) {
      await sleep(1000);
      rss.push((await memory(env.pid)).rss / MIB);
    }
    const cpu = (await cpuSeconds(env.pid)) - cpuStart;
    const percent = (cpu / ((Date.now() - start) / 1000)) * 100;
    // The same after a step with busy output, which loads the log path's WebAssembly encoder.
    await env.run(demoTask(uniqueId('idle-busy'), "yes 'cuttle-idle-busy-line' | head -c 4000000"));
    await sleep(2000);
    const afterBusy: number[] = [];
    for (let s = 0; s < busyWindowS; s++) {
      await sleep(1000);
      afterBusy.push((await memory(env.pid)).rss / MIB);
    }
    report.row('agent RSS right after hello', 'MiB', [startup.rss / MIB]);
    const resident = report.row(`agent RSS, idle (1 sample/s over ${windowS} s)`, 'MiB', rss);
    report.row(`agent RSS, idle after a busy step (over ${busyWindowS} s)`, 'MiB', afterBusy);
    report.row(`agent CPU over ${windowS} s`, 's', [cpu]);
    report.row('agent CPU, idle', '% of a core', [percent]);
    report.note(
      `CPU is read from /proc in clock ticks (10 ms), so over ${windowS} s it resolves ` +
        `${((0.01 / windowS) * 100).toFixed(3)}% of a core.`,
    );
    report.note(
      'the goal is held to the window after a trivial step; a step that printed 4 MB loads the ' +
        'log encoder (WebAssembly), whose compiler stays resident (docs/performance.md, round 10).',
    );
    report.goal('under 60 MiB resident', resident.max < 60, `max ${resident.max.toFixed(1)} MiB`);
    report.goal('under 1% CPU', percent < 1, `${percent.toFixed(2)}% of a core`);
  });
}
