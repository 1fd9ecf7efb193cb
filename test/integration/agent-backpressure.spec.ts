/**
 * A server that stops acknowledging: the agent's memory stays bounded, its journal stops at the
 * configured limit (output paused, not dropped), and everything arrives once acks resume.
 * Needs: a Docker engine; a real agent process (its memory is measured from /proc).
 */
import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  demoTask,
  makeTempDir,
  spawnAgentProcess,
  TEST_TOKEN,
  uniqueTaskId,
  withTimeout,
} from '../support/agent-harness.js';

async function rssKiB(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

describe('agent end to end: a server that stops acknowledging', function () {
  this.timeout(180_000);
  let server: ReferenceServer;
  let dataDir: string;
  before(async () => {
    await ensureDemoImage(DockerClient.connect());
    dataDir = await makeTempDir('backpressure-server');
    server = new ReferenceServer({ token: TEST_TOKEN, dataDir, autoAck: false });
    await server.listen();
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps memory bounded and the journal under its limit, then delivers everything', async () => {
    const limit = 8 * 1024 * 1024;
    const agent = await spawnAgentProcess([
      '--server',
      server.url,
      '--token',
      TEST_TOKEN,
      '--journal-limit-bytes',
      String(limit),
    ]);
    try {
      const lines = 5_000_000; // 205 MB of output, as the reliability issue asks
      const taskId = uniqueTaskId('noack');
      const handle = server.submit(
        demoTask(
          taskId,
          `yes 0123456789012345678901234567890123456789 | head -n ${lines}\necho done`,
        ),
      );
      let peak = 0;
      let journalPeak = 0;
      const journal = join(agent.home, 'Journal', taskId, 'events.ndjson');
      for (let i = 0; i < 40; i++) {
        peak = Math.max(peak, await rssKiB(agent.child.pid));
        journalPeak = Math.max(
          journalPeak,
          await stat(journal).then(
            (s) => s.size,
            () => 0,
          ),
        );
        await delay(100);
      }
      console.log(
        `      without acks: agent peak RSS ${Math.round(peak / 1024)} MiB, journal ${Math.round(journalPeak / 1024 / 1024)} MiB (limit ${limit / 1024 / 1024} MiB)`,
      );
      assert.ok(journalPeak < limit + 2 * 1024 * 1024, `the journal grew to ${journalPeak} bytes`);
      assert.ok(peak < 200 * 1024, `the agent grew to ${peak} KiB`);
      server.setAutoAck(true);
      const result = await withTimeout(handle.result, 120_000, 'the result once acks resume');
      assert.equal(result.outcome, 'success');
      let count = 0;
      for (const event of handle.events) {
        if (event.kind === 'log' && event.stream === 'stdout') count += event.lines.length;
      }
      assert.equal(count, lines + 1, 'every line arrived');
    } finally {
      await agent.dispose();
    }
  });
});
