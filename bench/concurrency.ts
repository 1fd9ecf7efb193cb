/**
 * Concurrency: 64 trivial steps (16 quick) submitted at once to an agent with capacity 8: total
 * time, time per step in a slot, and the agent's peak memory; against the same number of direct
 * Engine API runs, 8 at a time.
 */
import { DEMO_IMAGE } from '../images/index.js';
import { apiRunsConcurrently } from './engine.js';
import { demoTask, uniqueId, withEnv } from './env.js';
import { MIB, ProcessWatch, stats, withTimeout } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';
import type { RemoteTask } from './server-process.js';

export const title = 'Concurrency: many trivial steps at capacity 8';

const CAPACITY = 8;

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const count = options.quick ? 16 : 64;
  const repetitions = 2;
  const apiTotal: number[] = [];
  const agentTotal: number[] = [];
  const serviceMedian: number[] = [];
  const growth: number[] = [];
  const agentCpu: number[] = [];

  await withEnv({ capacity: CAPACITY }, async (env) => {
    // Warm-up: a full wave, so every slot has run once.
    await Promise.all(
      Array.from({ length: CAPACITY }, () => env.run(demoTask(uniqueId('conc-warmup'), 'true'))),
    );
    await apiRunsConcurrently(DEMO_IMAGE, ['true'], CAPACITY, CAPACITY);
    for (let rep = 0; rep < repetitions; rep++) {
      apiTotal.push(await apiRunsConcurrently(DEMO_IMAGE, ['true'], count, CAPACITY));

      const watch = await ProcessWatch.start(env.pid, 50);
      const pushedAt = new Map<string, number>();
      const service: number[] = [];
      // Submitted together; the server queues what does not fit and pushes on each result.
      const handles: RemoteTask[] = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          env.server.submit(demoTask(uniqueId(`conc-${i}`), 'true'), {
            onTask: (task) =>
              task.on('status', (status, at) => {
                if (status === 'pushed') pushedAt.set(task.taskId, at);
              }),
          }),
        ),
      );
      const start = Math.min(...handles.map((handle) => handle.submittedAt));
      const ends = await withTimeout(
        Promise.all(
          handles.map(async (handle) => {
            const { event: result, at } = await handle.result;
            // Pushed at once on submit: no status change was seen.
            service.push(at - (pushedAt.get(handle.taskId) ?? handle.submittedAt));
            if (result.outcome !== 'success') {
              throw new Error(`${handle.taskId} ended ${result.outcome}`);
            }
            return at;
          }),
        ),
        300_000,
        `${count} concurrent steps`,
      );
      agentTotal.push(Math.max(...ends) - start);
      const seen = await watch.stop();
      serviceMedian.push(stats(service).median);
      growth.push((seen.peak - seen.rssStart) / MIB);
      agentCpu.push(seen.cpuSeconds);
    }
  });
  const waves = count / CAPACITY;
  report.row(
    `Engine API: ${count} runs, ${CAPACITY} at a time`,
    's',
    apiTotal.map((ms) => ms / 1000),
  );
  report.compared(
    `cuttle: ${count} tasks, capacity ${CAPACITY}`,
    's',
    agentTotal.map((ms) => ms / 1000),
    `Engine API: ${count} runs, ${CAPACITY} at a time`,
  );
  report.row(
    'Engine API: per step in a slot (total / waves)',
    'ms',
    apiTotal.map((ms) => ms / waves),
  );
  report.compared(
    'cuttle: per step in a slot (total / waves)',
    'ms',
    agentTotal.map((ms) => ms / waves),
    'Engine API: per step in a slot (total / waves)',
  );
  report.row('cuttle: per step, pushed → result (median)', 'ms', serviceMedian);
  report.row('cuttle: agent peak RSS growth', 'MiB', growth);
  report.row('cuttle: agent CPU', 's', agentCpu);
  report.note(
    `the server pushes at most ${CAPACITY} tasks at a time (pushWhenFull off), the next on each result.`,
  );
}
