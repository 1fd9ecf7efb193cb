/**
 * The agent's metrics endpoint, scraped while a real task runs and after it, and parsed strictly.
 * Needs: a Docker engine; a real agent process.
 */
import assert from 'node:assert/strict';
import { freePort } from '../support/registry.js';
import { rm } from 'node:fs/promises';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  demoTask,
  eventually,
  makeTempDir,
  spawnAgentProcess,
  TEST_TOKEN,
  uniqueTaskId,
  waitForEvent,
  withTimeout,
} from '../support/agent-harness.js';
import { parsePrometheusText, type Sample } from '../support/prometheus.js';

function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

describe('agent end to end: metrics', function () {
  this.timeout(60_000);
  it('reports a running task, its outcome, bytes and readiness', async () => {
    await ensureDemoImage(DockerClient.connect());
    const dataDir = await makeTempDir('metrics-server');
    const server = new ReferenceServer({ token: TEST_TOKEN, dataDir });
    await server.listen();
    const port = await freePort();
    const agent = await spawnAgentProcess([
      '--server',
      server.url,
      '--token',
      TEST_TOKEN,
      '--metrics-listen',
      `127.0.0.1:${port}`,
    ]);
    const scrape = async (): Promise<Sample[]> =>
      parsePrometheusText(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).samples;
    try {
      await agent.waitForOutput(/connected to the server/);
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
        'readyz 200',
      );
      const handle = server.submit(
        demoTask(uniqueTaskId('metrics'), 'echo started\nsleep 2\necho done'),
      );
      await waitForEvent(
        handle,
        (e) => e.kind === 'log' && e.lines.includes('started'),
        'the step to start',
      );
      const during = await scrape();
      assert.equal(value(during, 'cuttle_tasks_running'), 1);
      assert.equal(value(during, 'cuttle_server_connected'), 1);
      assert.equal(value(during, 'cuttle_docker_engine_available'), 1);
      await withTimeout(handle.result, 30_000, 'the result');
      await eventually(
        async () =>
          value(await scrape(), 'cuttle_tasks_finished_total', { outcome: 'success' }) === 1,
        'the finished count',
      );
      const after = await scrape();
      assert.equal(value(after, 'cuttle_tasks_running'), 0);
      assert.ok((value(after, 'cuttle_log_sent_bytes_total') ?? 0) > 0);
      assert.ok(
        (value(after, 'cuttle_task_duration_seconds_count', { outcome: 'success' }) ?? 0) >= 1,
      );
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    } finally {
      await agent.dispose();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
