import { randomUUID } from 'node:crypto';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage, type DockerClient } from '../../images/index.js';

/** Label on images built by tests, so a crashed run's leftovers can be found by hand. */
export const TEST_LABEL = 'dev.cuttle.test';

/** A unique agent id per test run, so sweeping by label touches only this run's containers. */
export function testAgentId(): string {
  return `test-agent-${randomUUID()}`;
}

/** The busybox base plus arbitrary Dockerfile lines, e.g. `ENTRYPOINT ["/bin/false"]`. */
export async function buildTestImage(
  client: DockerClient,
  options: { tag: string; dockerfileExtra?: string },
): Promise<string> {
  await buildBusyboxImage(client, {
    tag: options.tag,
    labels: { [TEST_LABEL]: '1' },
    ...(options.dockerfileExtra === undefined ? {} : { dockerfileExtra: options.dockerfileExtra }),
  });
  return options.tag;
}

/** Removes every container carrying this agent id, running or not. */
export async function sweepContainers(client: DockerClient, agentId: string): Promise<void> {
  for (const container of await client.listContainers({ agentId })) {
    await client.remove(container.id);
  }
}

/** A host folder for a step's bind mount; realpath so the container sees the same absolute path. */
export async function makeWorkFolder(): Promise<{ path: string; dispose: () => Promise<void> }> {
  const path = await realpath(await mkdtemp(join(tmpdir(), 'cuttle-images-')));
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}
