/**
 * `cuttle try`: the embedded default. A reference server in-process on loopback, an agent with a
 * throwaway home, and one demo step in a real container, printed as it streams.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../../images/index.js';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { formatEvent } from '../event-printer.js';
import { createLogger } from '../logger.js';

const DEMO_SCRIPT = `echo "Hello from a cuttle step in a real container"
echo "running as uid $(id -u) in $PWD"
echo "the greeting variable is: $(get_octopusvariable Greeting)"
echo "the secret is: $(get_octopusvariable DemoPassword)"
for i in 1 2 3; do echo "step line $i"; done
echo "this line goes to stderr" >&2
write_highlight "helpers from Calamari work: write_highlight, set_octopusvariable, new_octopusartifact"
update_progress 50 "half way"
set_octopusvariable DeployedAt "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "report of the demo step, made at $(date -u)" > report.txt
new_octopusartifact "$PWD/report.txt"
`;

export async function tryCommand(): Promise<number> {
  const scratch = await mkdtemp(join(tmpdir(), 'cuttle-try-'));
  const docker = DockerClient.connect();
  const engine = await docker.engineInfo();
  console.log(`Docker engine ${engine.version} (API ${engine.apiVersion})`);
  const demo = await ensureDemoImage(docker);
  console.log(
    demo.built
      ? `no demo image was present: built ${demo.ref} locally from the host's busybox-static (no registry needed)`
      : `using the local image ${demo.ref}`,
  );
  const token = randomBytes(16).toString('hex');
  const server = new ReferenceServer({ token, dataDir: join(scratch, 'server') });
  await server.listen();
  console.log(`reference server on ${server.url}; agent home ${join(scratch, 'home')}`);
  const agent = await Agent.start(
    loadConfig({
      env: {},
      flags: {
        server: server.url,
        token,
        home: join(scratch, 'home'),
        name: 'cuttle-try',
        capacity: '1',
      },
    }),
    createLogger({ level: process.env.CUTTLE_LOG_LEVEL ?? 'warn', format: 'text' }),
  );
  try {
    const handle = server.submit({
      taskId: `try-${Date.now()}`,
      name: 'cuttle try demo',
      script: { syntax: 'sh', body: DEMO_SCRIPT },
      container: { image: DEMO_IMAGE, pullPolicy: 'if-not-present' },
      variables: [
        { name: 'Greeting', value: 'hello from the server' },
        { name: 'DemoPassword', value: 'correct-horse-battery', sensitive: true },
      ],
    });
    handle.on('event', (event) => {
      for (const line of formatEvent(event)) console.log(line);
    });
    const result = await handle.result;
    for (const event of handle.events) {
      if (event.kind === 'artifact') {
        console.log(
          `artifact ${event.name} stored by the server at ${server.artifactPath(event.sha256)}`,
        );
      }
    }
    console.log(
      `the server's data (events, artifacts) is under ${server.dataDir}, removed when try exits`,
    );
    return result.outcome === 'success' ? 0 : 1;
  } finally {
    await agent.shutdown();
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
