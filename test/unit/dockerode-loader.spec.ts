import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const IMAGES = new URL('../../images/index.ts', import.meta.url).href;

/**
 * Runs in a fresh process (as the agent does), so that no other test's imports count: uses the
 * agent-facing DockerClient against the engine, lists the deferred packages in the CommonJS cache,
 * then uses the two deferred files the way dockerode and docker-modem would.
 */
const PROBE = `
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
const { DEMO_IMAGE, DockerClient, ensureDemoImage } = await import(${JSON.stringify(IMAGES)});
const require = createRequire(${JSON.stringify(IMAGES)});
const loaded = () => [...new Set(Object.keys(require.cache).flatMap((file) => {
  const found = /\\/node_modules\\/(@grpc\\/[^/]+|ssh2|protobufjs)\\//.exec(file);
  return found === null ? [] : [found[1]];
}))].sort();
const report = { afterImport: loaded() };
const docker = DockerClient.connect();
if (await docker.isReachable()) {
  report.engine = (await docker.engineInfo()).version;
  await ensureDemoImage(docker);
  const agentId = 'test-agent-' + randomUUID();
  const id = await docker.createInertContainer(DEMO_IMAGE, { 'dev.cuttle.agent': agentId });
  try {
    report.listed = (await docker.listContainers({ agentId })).map((c) => c.id);
    report.created = id;
    const file = await docker.readPath(id, '/bin/busybox', 4);
    report.head = file !== undefined && 'content' in file ? [...file.content] : null;
    report.missingImage = (await docker.imageExists('cuttle-test-absent:' + randomUUID())) ?? null;
  } finally {
    await docker.remove(id);
  }
  report.afterCalls = loaded();
}
const fromDockerode = createRequire(require.resolve('dockerode'));
const withSession = fromDockerode('./session');
report.sessionError = await new Promise((resolve) => {
  const modem = { dial: (_options, callback) => callback(new Error('no session here')) };
  withSession({ modem }, undefined, (error) => resolve(error.message));
});
const sshAgent = createRequire(fromDockerode.resolve('docker-modem'))('./ssh');
report.sshAgent = sshAgent({ host: '127.0.0.1', port: 1 }).constructor.name;
report.afterUse = loaded();
console.log(JSON.stringify(report));
`;

interface ProbeReport {
  afterImport: string[];
  engine?: string;
  created?: string;
  listed?: string[];
  head?: number[] | null;
  missingImage?: null;
  afterCalls?: string[];
  sessionError: string;
  sshAgent: string;
  afterUse: string[];
}

describe('dockerode-loader: dockerode without its BuildKit-session and ssh dependencies', function () {
  let report: ProbeReport;

  before(async function () {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '--eval', PROBE],
      { cwd: REPO },
    );
    const parsed: unknown = JSON.parse(stdout);
    if (!isProbeReport(parsed)) throw new Error(`unexpected probe output: ${stdout}`);
    report = parsed;
  });

  it('DockerClient works against the real engine', function () {
    if (report.engine === undefined) this.skip(); // no Docker engine answers here
    assert.match(report.engine, /^\d+\.\d+/);
    assert.ok(report.created !== undefined && report.created !== '');
    assert.deepEqual(report.listed, [report.created]);
    assert.deepEqual(report.head, [0x7f, 0x45, 0x4c, 0x46]); // busybox is an ELF file
    assert.equal(report.missingImage, null);
  });

  it('loads neither @grpc/grpc-js, @grpc/proto-loader nor ssh2 for it', function () {
    assert.deepEqual(report.afterImport, []);
    if (report.afterCalls !== undefined) assert.deepEqual(report.afterCalls, []);
  });

  it('loads them when a BuildKit session or an ssh:// host is first used', function () {
    // The real session.js ran: it asked the modem to dial and reported the modem's error.
    assert.equal(report.sessionError, 'no session here');
    // The real ssh.js ran: it made an http.Agent that tunnels through an ssh2 Client.
    assert.equal(report.sshAgent, 'Agent');
    for (const name of ['@grpc/grpc-js', '@grpc/proto-loader', 'ssh2']) {
      assert.ok(report.afterUse.includes(name), `${name} in ${report.afterUse.join(', ')}`);
    }
  });
});

function isProbeReport(value: unknown): value is ProbeReport {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray(Reflect.get(value, 'afterImport')) &&
    Array.isArray(Reflect.get(value, 'afterUse')) &&
    typeof Reflect.get(value, 'sessionError') === 'string' &&
    typeof Reflect.get(value, 'sshAgent') === 'string'
  );
}
