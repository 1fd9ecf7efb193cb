/**
 * The agent's own image (the repository's Dockerfile) running a real step, as in a dynamic worker
 * pool: the host's Docker socket mounted, a non-root user in the socket's group, the home at the
 * same path inside and outside. No registry is reachable, so the Node.js base image is made here
 * from the host's own node binary and the C libraries it needs, on top of the busybox demo image;
 * and the production node_modules are taken from the host (the Dockerfile's `.prebuilt/` route).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chown, copyFile, cp, readFile, readdir, realpath, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  DEMO_IMAGE,
  DockerClient,
  ensureDemoImage,
  tarContext,
  type ContextEntry,
} from '../../images/index.js';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import {
  REPO_ROOT,
  TEST_TOKEN,
  demoTask,
  eventually,
  makeTempDir,
  runTask,
  streamLines,
  withTimeout,
} from '../support/agent-harness.js';
import { TEST_LABEL, sweepContainers, testAgentId } from '../support/docker.js';

const run = promisify(execFile);

const IMAGE_LABEL = `${TEST_LABEL}=agent-image`;
const NODE_BASE = 'cuttle-test-node-base:20';
const AGENT_UID = 10001;
const SOCKET = '/var/run/docker.sock';

/** Runs the docker CLI; a failure says what the CLI printed. */
async function dockerCli(args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run('docker', args, {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      // The classic builder, as images/ uses: BuildKit may want to resolve FROM in a registry.
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
    return stdout;
  } catch (error) {
    const output = (key: string): string => {
      const value: unknown =
        typeof error === 'object' && error !== null ? Reflect.get(error, key) : undefined;
      return typeof value === 'string' ? value : '';
    };
    throw new Error(
      `docker ${args.slice(0, 2).join(' ')} failed: ${String(error)}\n${output('stdout')}\n${output('stderr')}`,
      { cause: error },
    );
  }
}

/** Both streams of a container's log (the agent logs warnings and errors to stderr). */
async function containerLogs(id: string): Promise<string> {
  const { stdout, stderr } = await run('docker', ['logs', id], { maxBuffer: 16 * 1024 * 1024 });
  return `${stdout}${stderr}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The shared libraries `ldd` says a binary needs, as absolute paths (the loader included). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  const paths: string[] = [];
  for (const line of stdout.split('\n')) {
    const found = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (found?.[1] !== undefined) paths.push(found[1]);
  }
  return paths;
}

/** `cuttle-test-node-base:20`: the demo busybox image plus the host's node and its libraries. */
async function buildNodeBase(docker: DockerClient): Promise<void> {
  const node = await realpath(process.execPath);
  const entries: ContextEntry[] = [
    {
      name: 'Dockerfile',
      content: [
        `FROM ${DEMO_IMAGE}`,
        'COPY rootfs/ /',
        'RUN ["/usr/local/bin/node", "--version"]',
        '',
      ].join('\n'),
    },
    { name: 'rootfs/usr/local/bin/node', content: await readFile(node), mode: 0o755 },
  ];
  for (const library of await sharedLibraries(node)) {
    // The library's own path (often a link) with the content of the file it leads to.
    entries.push({
      name: `rootfs${library}`,
      content: await readFile(await realpath(library)),
      mode: 0o755,
    });
  }
  await docker.buildImage({
    tag: NODE_BASE,
    context: await tarContext(entries),
    labels: { [TEST_LABEL]: 'agent-image' },
  });
}

/**
 * Copies the production packages of package-lock.json from the host's node_modules, each without
 * its nested node_modules (those are entries of their own, copied when production): what the
 * Dockerfile's `npm ci --omit=dev --omit=optional` installs, so not `dev`, `optional` or
 * `devOptional` (typescript is one: a dev dependency and valibot's optional peer).
 */
async function copyProductionModules(target: string): Promise<number> {
  const lock: unknown = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  const packages = isRecord(lock) ? lock.packages : undefined;
  assert.ok(isRecord(packages), 'package-lock.json has no "packages" (lockfile v2 or later)');
  let copied = 0;
  for (const [path, entry] of Object.entries(packages)) {
    if (
      !path.startsWith('node_modules/') ||
      !isRecord(entry) ||
      entry.dev === true ||
      entry.optional === true ||
      entry.devOptional === true
    )
      continue;
    const source = join(REPO_ROOT, path);
    // Optional packages for other platforms are in the lock but not on disk.
    if (
      !(await stat(source).then(
        () => true,
        () => false,
      ))
    )
      continue;
    const nested = join(source, 'node_modules');
    await cp(source, join(target, path), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (from) => from !== nested,
    });
    copied++;
  }
  return copied;
}

/**
 * Builds the agent image with the docker CLI (so .dockerignore applies, as for an operator) from a
 * context holding the repository's Dockerfile, .dockerignore and package files, a fresh compile and
 * bundle of the sources, and the production node_modules under `.prebuilt/`.
 */
async function buildAgentImage(tag: string, context: string): Promise<void> {
  for (const file of ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json']) {
    await copyFile(join(REPO_ROOT, file), join(context, file));
  }
  // Compiled here rather than taken from dist/, which may be stale or being rebuilt.
  await run(
    process.execPath,
    [
      join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(REPO_ROOT, 'tsconfig.build.json'),
      '--outDir',
      join(context, 'dist'),
    ],
    { timeout: 120_000 },
  );
  // dist/agent/cli.js is the esbuild bundle, as `npm run build` makes it.
  await run(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'bundle.ts'), join(context, 'dist', 'agent')],
    { timeout: 120_000 },
  );
  assert.ok((await copyProductionModules(join(context, '.prebuilt'))) > 0, 'no packages copied');
  await dockerCli([
    'build',
    // Leave no container behind when a step of the build fails.
    '--force-rm',
    '--build-arg',
    `NODE_BASE=${NODE_BASE}`,
    '--label',
    IMAGE_LABEL,
    '-t',
    tag,
    context,
  ]);
}

describe('the agent image (Dockerfile), for dynamic worker pools', function () {
  this.timeout(120_000);

  const agentImage = `cuttle-test-agent:${randomUUID().slice(0, 8)}`;
  const docker = DockerClient.connect();
  let server: ReferenceServer | undefined;
  let socketGid: number;
  const containers: string[] = [];
  const dirs: string[] = [];
  const agentIds: string[] = [];

  before(async function () {
    this.timeout(300_000);
    if (process.getuid?.() !== 0) {
      console.log('    (skipped: needs root, to give the home to the image user 10001)');
      this.skip();
    }
    socketGid = (await stat(SOCKET)).gid;
    await ensureDemoImage(docker);
    await buildNodeBase(docker);
    const context = await makeTempDir('agent-image-context');
    dirs.push(context);
    await buildAgentImage(agentImage, context);
  });

  beforeEach(async () => {
    const dataDir = await makeTempDir('agent-image-server');
    dirs.push(dataDir);
    server = new ReferenceServer({ token: TEST_TOKEN, heartbeatMs: 2000, dataDir });
    await server.listen();
  });

  afterEach(async function () {
    for (const id of containers) {
      if (this.currentTest?.state === 'failed') {
        const logs = await containerLogs(id).catch((error: unknown) => String(error));
        console.error(`--- agent container log ---\n${logs}\n---`);
      }
    }
    for (const id of containers.splice(0)) await docker.remove(id).catch(() => undefined);
    for (const agentId of agentIds.splice(0)) {
      await sweepContainers(docker, agentId).catch(() => undefined);
    }
    await server?.close();
    server = undefined;
  });

  after(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
    await docker.removeImage(agentImage).catch(() => undefined);
    await docker.removeImage(NODE_BASE).catch(() => undefined);
  });

  /** A home folder the image's user owns, at a real path (the engine mounts real paths). */
  async function agentHome(): Promise<string> {
    const home = await makeTempDir('agent-image-home');
    dirs.push(home);
    await chown(home, AGENT_UID, AGENT_UID);
    return home;
  }

  /** `docker run -d` of the agent image as docs/operations.md says, with the given home mount. */
  async function startAgentContainer(
    hostHome: string,
    containerHome: string,
    args: string[] = [],
  ): Promise<string> {
    assert.ok(server !== undefined);
    const id = (
      await dockerCli([
        'run',
        '-d',
        '--name',
        `cuttle-test-agent-${randomUUID().slice(0, 8)}`,
        '--label',
        IMAGE_LABEL,
        '--init',
        '--user',
        `${AGENT_UID}:${AGENT_UID}`,
        '--group-add',
        String(socketGid),
        '-v',
        `${SOCKET}:/var/run/docker.sock`,
        '-v',
        `${hostHome}:${containerHome}`,
        // The reference server listens on this machine's loopback.
        '--network',
        'host',
        '-e',
        `CUTTLE_SERVER=${server.url}`,
        '-e',
        `CUTTLE_TOKEN=${TEST_TOKEN}`,
        '-e',
        `CUTTLE_HOME=${containerHome}`,
        '-e',
        'CUTTLE_NAME=agent-image-e2e',
        agentImage,
        'agent',
        ...args,
      ])
    ).trim();
    containers.push(id);
    return id;
  }

  it('is built as documented: non-root, the CLI as entrypoint, no dev packages or test code', async () => {
    const image = await docker.imageExists(agentImage);
    assert.ok(image !== undefined, `${agentImage} was not built`);
    assert.equal(image.user, `${AGENT_UID}:${AGENT_UID}`);
    assert.deepEqual(image.entrypoint, ['node', '/opt/cuttle/dist/agent/cli.js']);
    assert.deepEqual(image.cmd, ['agent']);
    assert.ok(image.env.includes('CUTTLE_HOME=/var/lib/cuttle'), image.env.join(' '));
    const stopSignal = await dockerCli([
      'image',
      'inspect',
      '--format',
      '{{.Config.StopSignal}}',
      agentImage,
    ]);
    assert.equal(stopSignal.trim(), 'SIGTERM');
    const listing = await dockerCli([
      'run',
      '--rm',
      '--label',
      IMAGE_LABEL,
      '--entrypoint',
      '/bin/sh',
      agentImage,
      '-c',
      'cd /opt/cuttle && ls node_modules; ls -a dist; stat -c "%u %a" /var/lib/cuttle; node dist/agent/cli.js version',
    ]);
    const lines = listing.split('\n');
    assert.ok(lines.includes('ws') && lines.includes('dockerode'), listing);
    assert.ok(!lines.includes('typescript') && !lines.includes('mocha'), listing);
    assert.ok(lines.includes('agent') && !lines.includes('test') && !lines.includes('bench'));
    assert.ok(lines.includes(`${AGENT_UID} 700`), listing);
    const version: unknown = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
    assert.ok(isRecord(version) && lines.includes(String(version.version)), listing);
  });

  it('runs a real step through the host engine, then exits 0 once drained', async () => {
    assert.ok(server !== undefined);
    const home = await agentHome();
    const container = await startAgentContainer(home, home, ['--exit-when-drained']);
    const agentId = await withTimeout(
      (async () => {
        await eventually(
          () => server?.connectedAgents().some((a) => a.name === 'agent-image-e2e') ?? false,
          'the containerised agent to connect',
          60_000,
          200,
        );
        return (await readFile(join(home, 'agent-id'), 'utf8')).trim();
      })(),
      65_000,
      'the agent id',
    );
    agentIds.push(agentId);

    const { handle, result } = await runTask(
      server,
      demoTask(
        `agent-image-${randomUUID().slice(0, 8)}`,
        'echo "hello from a step of the containerised agent"; echo "work folder: $PWD"',
      ),
      60_000,
    );
    assert.equal(result.outcome, 'success', JSON.stringify(result));
    const stdout = streamLines(handle, 'stdout');
    assert.ok(stdout.includes('hello from a step of the containerised agent'), stdout.join('\n'));
    assert.ok(
      stdout.some((line) => line.startsWith(`work folder: ${join(home, 'Work')}/`)),
      stdout.join('\n'),
    );
    // The step's container was removed and nothing of the home check is left.
    assert.deepEqual(await docker.listContainers({ agentId }), []);
    assert.deepEqual(
      (await readdir(home)).filter((name) => name.startsWith('.cuttle-home-check-')),
      [],
    );

    await withTimeout(server.drain(), 60_000, 'the agent to drain');
    const exit = await withTimeout(docker.wait(container), 60_000, 'the agent container to exit');
    assert.equal(exit.exitCode, 0, await containerLogs(container));
    assert.match(await containerLogs(container), /drained/);
  });

  it('checks the home from inside the container: same path seen, another path refused', async () => {
    // The check itself, run in the agent's image as the agent would (independent of its wiring).
    const script = [
      "const { DockerClient } = await import('/opt/cuttle/dist/images/index.js');",
      "const check = await import('/opt/cuttle/dist/images/home-mount-check.js');",
      "console.log('in a container: ' + check.runningInContainer());",
      'try {',
      '  const result = await check.checkHomeVisibleToEngine(',
      '    DockerClient.connect(), process.env.CUTTLE_HOME, process.env.CHECK_AGENT_ID);',
      "  console.log('checked: ' + JSON.stringify(result));",
      '} catch (error) {',
      "  console.log('refused: [' + error.code + '] ' + error.message);",
      '}',
    ].join('\n');
    const agentId = testAgentId();
    agentIds.push(agentId);
    const runCheck = async (hostHome: string, containerHome: string): Promise<string> =>
      dockerCli([
        'run',
        '--rm',
        '--label',
        IMAGE_LABEL,
        '--user',
        `${AGENT_UID}:${AGENT_UID}`,
        '--group-add',
        String(socketGid),
        '-v',
        `${SOCKET}:/var/run/docker.sock`,
        '-v',
        `${hostHome}:${containerHome}`,
        '-e',
        `CUTTLE_HOME=${containerHome}`,
        '-e',
        `CHECK_AGENT_ID=${agentId}`,
        '--entrypoint',
        'node',
        agentImage,
        '--input-type=module',
        '-e',
        script,
      ]);

    const home = await agentHome();
    const same = await runCheck(home, home);
    assert.match(same, /^in a container: true$/m);
    assert.match(same, /^checked: \{"checked":true,"image":"sha256:[0-9a-f]{64}"\}$/m);

    const elsewhere = `/var/tmp/cuttle-e2e-elsewhere-${randomUUID().slice(0, 8)}`;
    dirs.push(elsewhere);
    const other = await runCheck(home, elsewhere);
    assert.match(
      other,
      /^refused: \[workspace-error\] the agent's home .* is not at the same path/m,
    );
    assert.ok(
      other.includes(`docker run -v ${elsewhere}:${elsewhere} -e CUTTLE_HOME=${elsewhere}`),
      other,
    );

    // Nothing left: no marker in the home, no container with the agent's label.
    assert.deepEqual(
      (await readdir(home)).filter((name) => name.startsWith('.cuttle-home-check-')),
      [],
    );
    assert.deepEqual(await docker.listContainers({ agentId }), []);
  });

  // Needs the lead's wiring in agent/agent.ts (Agent.start): checkHomeVisibleToEngine() from
  // images/home-mount-check.ts, called when runningInContainer(). Until then the agent starts with
  // a mismatched home and this test fails: un-skip it with that wiring.
  it('refuses to start when its home is at another path on the host, saying how to mount it', async () => {
    assert.ok(server !== undefined);
    const hostHome = await agentHome();
    // A path that does not exist on this host: the engine would mount a new, empty folder there.
    const containerHome = `/var/tmp/cuttle-e2e-elsewhere-${randomUUID().slice(0, 8)}`;
    dirs.push(containerHome);
    const container = await startAgentContainer(hostHome, containerHome);
    const exit = await withTimeout(docker.wait(container), 60_000, 'the agent container to exit');
    const logs = await containerLogs(container);
    assert.notEqual(exit.exitCode, 0, logs);
    assert.match(logs, /is not at the same path/);
    assert.ok(logs.includes(`docker run -v ${containerHome}:${containerHome}`), logs);
    assert.match(logs, /\[workspace-error\]/);
    assert.deepEqual(server.connectedAgents(), []);
    // The check cleaned up after itself: no marker in the home, no container of the agent.
    const agentId = (await readFile(join(hostHome, 'agent-id'), 'utf8')).trim();
    agentIds.push(agentId);
    assert.deepEqual(
      (await readdir(hostHome)).filter((name) => name.startsWith('.cuttle-home-check-')),
      [],
    );
    assert.deepEqual(await docker.listContainers({ agentId }), []);
  });
});
