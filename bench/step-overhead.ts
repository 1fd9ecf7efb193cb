/**
 * Step overhead: a trivial step (`true`) in a cached local image, from the task sent to its result
 * received, against the Engine API called directly (create+start+wait+remove) and `docker run --rm`.
 */
import { rm } from 'node:fs/promises';
import { DEMO_IMAGE } from '../images/index.js';
import { apiRun, cliRun } from './engine.js';
import { demoTask, makeTempDir, uniqueId, withEnv } from './env.js';
import { interleave } from './measure.js';
import type { BenchOptions } from './options.js';
import type { CaseReport } from './report.js';

export const title = 'Step overhead: trivial step, task sent → result received';

export async function run(report: CaseReport, options: BenchOptions): Promise<void> {
  const count = options.quick ? 5 : 20;
  const mountDir = await makeTempDir('mount');
  try {
    await withEnv({ capacity: 1 }, async (env) => {
      const agent = async (): Promise<number> =>
        (await env.run(demoTask(uniqueId('overhead'), 'true'))).ms;
      // The agent's own container settings, called directly: init, a bind mount, log driver none.
      const apiAgentSettings = (): Promise<number> =>
        apiRun(DEMO_IMAGE, ['true'], {
          Init: true,
          Binds: [`${mountDir}:${mountDir}`],
          LogConfig: { Type: 'none', Config: {} },
        });
      const measures = {
        api: () => apiRun(DEMO_IMAGE, ['true']),
        cli: () => cliRun(DEMO_IMAGE, ['true']),
        apiAgentSettings,
        agent,
      };
      await interleave(2, measures); // warm-up: first runs pay for lazy loading on every side
      const samples = await interleave(count, measures);
      const api = report.row('Engine API create+start+wait+remove', 'ms', samples.get('api') ?? []);
      const cli = report.compared(
        'docker run --rm IMAGE true',
        'ms',
        samples.get('cli') ?? [],
        'Engine API create+start+wait+remove',
      );
      report.compared(
        "Engine API, agent's settings (init, bind, log none)",
        'ms',
        samples.get('apiAgentSettings') ?? [],
        'Engine API create+start+wait+remove',
      );
      const agentStats = report.compared(
        'cuttle: task → result',
        'ms',
        samples.get('agent') ?? [],
        'Engine API create+start+wait+remove',
      );
      report.compared(
        'cuttle vs docker run',
        'ms',
        samples.get('agent') ?? [],
        'docker run --rm IMAGE true',
      );
      const ratio = agentStats.median / api.median;
      report.goal(
        'within 1.15× of the direct Engine API',
        ratio <= 1.15,
        `${ratio.toFixed(2)}× (${agentStats.median.toFixed(0)} ms vs ${api.median.toFixed(0)} ms)`,
      );
      report.goal(
        'below the docker CLI',
        agentStats.median < cli.median,
        `${agentStats.median.toFixed(0)} ms vs ${cli.median.toFixed(0)} ms`,
      );
    });
  } finally {
    await rm(mountDir, { recursive: true, force: true });
  }
}
