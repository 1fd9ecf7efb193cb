import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { bundleOptions } from '../../scripts/bundle.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Bundled with the options of `npm run build` (scripts/bundle.ts) and run in a fresh process:
 * uses DockerClient against the engine, lists the deferred packages in the CommonJS cache (in a
 * bundle it holds only what is required from node_modules at run time), then uses a BuildKit
 * session and an ssh:// host the way cuttle would reach them, through dockerode.
 */
const PROBE = `
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from ${JSON.stringify(join(REPO, 'images/index.ts'))};
import { Docker } from ${JSON.stringify(join(REPO, 'images/dockerode-loader.ts'))};
const cache = createRequire(import.meta.url).cache;
const loaded = () => [...new Set(Object.keys(cache).flatMap((file) => {
  const found = /\\/node_modules\\/(@grpc\\/[^/]+|ssh2|protobufjs)\\//.exec(file);
  return found === null ? [] : [found[1]];
}))].sort();
const fromNodeModules = (name) =>
  Object.keys(cache).some((file) => file.endsWith('/node_modules/' + name));
const report = { afterImport: loaded(), dockerodeRequired: fromNodeModules('dockerode/lib/docker.js') };
const docker = DockerClient.connect();
if (await docker.isReachable()) {
  report.engine = (await docker.engineInfo()).version;
  await ensureDemoImage(docker);
  const agentId = 'test-agent-' + randomUUID();
  const id = await docker.createInertContainer(DEMO_IMAGE, { 'dev.cuttle.agent': agentId });
  try {
    report.listed = (await docker.listContainers({ agentId })).map((c) => c.id);
    report.created = id;
  } finally {
    await docker.remove(id);
  }
  report.afterCalls = loaded();
}
const noDial = new Docker();
noDial.modem.dial = (_options, callback) => callback(new Error('no session here'));
report.sessionError = await new Promise((resolve) => {
  noDial.buildImage({ context: '/nonexistent', src: [] }, { version: '2' }, (error) =>
    resolve(error?.message ?? 'no error'));
});
const overSsh = new Docker({ protocol: 'ssh', host: '127.0.0.1', port: 1, username: 'nobody' });
report.sshError = await overSsh.ping().then(() => 'no error', (error) => error.code ?? error.message);
report.afterUse = loaded();
report.realFilesRequired = ['dockerode/lib/session.js', 'docker-modem/lib/ssh.js'].filter(fromNodeModules);
console.log(JSON.stringify(report));
`;

interface ProbeReport {
  afterImport: string[];
  engine?: string;
  created?: string;
  listed?: string[];
  afterCalls?: string[];
  sessionError: string;
  sshError: string;
  afterUse: string[];
  dockerodeRequired: boolean;
  realFilesRequired: string[];
}

describe('the bundle (scripts/bundle.ts): dockerode without its BuildKit-session and ssh dependencies', function () {
  this.timeout(60_000);
  let report: ProbeReport;
  // Under node_modules, so that the bundle finds the packages it leaves out as the agent does.
  const dir = join(REPO, 'node_modules', '.cache', `cuttle-bundle-probe-${randomUUID()}`);

  before(async function () {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, 'probe.ts');
    await writeFile(probe, PROBE);
    await build({ ...bundleOptions(dir), entryPoints: [probe], logLevel: 'error' });
    const { stdout } = await run(process.execPath, [join(dir, 'probe.js')], { cwd: REPO });
    const parsed: unknown = JSON.parse(stdout);
    if (!isProbeReport(parsed)) throw new Error(`unexpected probe output: ${stdout}`);
    report = parsed;
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('bundles dockerode rather than requiring it from node_modules, without gRPC or ssh2', function () {
    assert.equal(report.dockerodeRequired, false);
    assert.deepEqual(report.afterImport, []);
  });

  it('DockerClient works against the real engine', function () {
    if (report.engine === undefined) this.skip(); // no Docker engine answers here
    assert.match(report.engine, /^\d+\.\d+/);
    assert.ok(report.created !== undefined && report.created !== '');
    assert.deepEqual(report.listed, [report.created]);
    assert.deepEqual(report.afterCalls, []);
  });

  it('loads gRPC and ssh2 from node_modules when a BuildKit session or an ssh:// host is first used', function () {
    // The real session.js ran: it asked the modem to dial and reported the modem's error.
    assert.equal(report.sessionError, 'no session here');
    // The real ssh.js ran: ssh2 tried to connect to a closed port.
    assert.equal(report.sshError, 'ECONNREFUSED');
    for (const name of ['@grpc/grpc-js', '@grpc/proto-loader', 'ssh2']) {
      assert.ok(report.afterUse.includes(name), `${name} in ${report.afterUse.join(', ')}`);
    }
    assert.deepEqual(report.realFilesRequired, [
      'dockerode/lib/session.js',
      'docker-modem/lib/ssh.js',
    ]);
  });
});

function isProbeReport(value: unknown): value is ProbeReport {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray(Reflect.get(value, 'afterImport')) &&
    Array.isArray(Reflect.get(value, 'afterUse')) &&
    typeof Reflect.get(value, 'sessionError') === 'string' &&
    typeof Reflect.get(value, 'sshError') === 'string' &&
    typeof Reflect.get(value, 'dockerodeRequired') === 'boolean' &&
    Array.isArray(Reflect.get(value, 'realFilesRequired'))
  );
}

describe('the bundle (scripts/bundle.ts): winston without its own debug output', function () {
  this.timeout(60_000);
  const dir = join(REPO, 'node_modules', '.cache', `cuttle-bundle-logger-${randomUUID()}`);

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('logs through winston as the agent does, with @dabh/diagnostics left out', async function () {
    await mkdir(dir, { recursive: true });
    const entry = join(dir, 'logger-probe.ts');
    await writeFile(
      entry,
      // images/ too: the bundle's options insist that dockerode's deferred files are in it.
      `import ${JSON.stringify(join(REPO, 'images/index.ts'))};\n` +
        `import { createLogger } from ${JSON.stringify(join(REPO, 'agent/logger.ts'))};\n` +
        "createLogger({ level: 'info', format: 'json' }).info('bundled', { taskId: 'T-1' });\n",
    );
    const { metafile } = await build({
      ...bundleOptions(dir),
      entryPoints: [entry],
      metafile: true,
      logLevel: 'error',
    });
    const inputs = Object.keys(metafile.inputs);
    assert.ok(
      inputs.some((file) => file.includes('node_modules/winston/')),
      'winston is bundled',
    );
    assert.deepEqual(
      inputs.filter((file) => file.includes('node_modules/@dabh/diagnostics/')),
      [],
    );
    const { stdout } = await run(process.execPath, [join(dir, 'logger-probe.js')], { cwd: REPO });
    assert.match(stdout, /"message":"bundled"/);
    assert.match(stdout, /"taskId":"T-1"/);
  });
});
