/**
 * Reconnect: the time from the server coming back to the agent's `hello` — after a restart of the
 * server (down 1 s: the agent's capped, jittered backoff decides), and after a cut connection with
 * the server still up.
 */
import { demoTask, uniqueId, withEnv } from './env.js';
import { withTimeout } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';

export const title = "Reconnect: server back → agent's hello";

const DOWN_MS = 1000;

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const repetitions = options.quick ? 3 : 8;
  const afterRestart: number[] = [];
  const afterCut: number[] = [];
  await withEnv({ capacity: 1 }, async (env) => {
    await env.run(demoTask(uniqueId('reconnect-warmup'), 'true'));
    for (let rep = 0; rep < repetitions; rep++) {
      const { upAt, hello } = await env.restartServer(DOWN_MS);
      afterRestart.push((await withTimeout(hello, 60_000, 'hello after a restart')) - upAt);

      const next = new Promise<number>((resolve) => env.server.once('hello', resolve));
      const cutAt = await env.server.disconnectAll();
      afterCut.push((await withTimeout(next, 60_000, 'hello after a cut')) - cutAt);
    }
    // Still working after all that.
    await env.run(demoTask(uniqueId('reconnect-after'), 'true'));
  });
  report.row(`server restarted (down ${DOWN_MS} ms): listening → hello`, 'ms', afterRestart);
  report.row('connection cut, server up: cut → hello', 'ms', afterCut);
  report.note(
    'the agent retries with full-jitter exponential backoff (500 ms doubling, 30 s cap): after a ' +
      'restart the figure is mostly the random wait, by design.',
  );
}
