/**
 * The agent end to end, who it trusts: a wrong token is reported clearly and retried slowly (the
 * agent as a real process), and a pinned certificate decides whether wss:// connects (PROTOCOL.md
 * section 1).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import {
  AgentEnv,
  demoTask,
  eventually,
  makeTempDir,
  spawnAgentProcess,
  streamLines,
  uniqueTaskId,
  type AgentProcess,
} from '../support/agent-harness.js';

/** A TCP relay in front of the server that counts connection attempts. */
class CountingProxy {
  connections = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(targetPort: number) {
    this.#server = createServer((client) => {
      this.connections += 1;
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => socket.destroy());
        socket.on('close', () => this.#sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    assert.ok(address !== null && typeof address === 'object');
    return address.port;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('agent end to end: trust', function () {
  this.timeout(60_000);

  describe('a wrong token (agent process)', () => {
    let dataDir: string;
    let server: ReferenceServer;
    let proxy: CountingProxy;
    let agent: AgentProcess | undefined;

    before(async () => {
      dataDir = await makeTempDir('server');
      server = new ReferenceServer({ token: 'the-right-token', dataDir });
      await server.listen();
      proxy = new CountingProxy(Number(new URL(server.url).port));
    });

    after(async () => {
      await agent?.dispose();
      await proxy?.close();
      await server?.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    afterEach(function () {
      if (this.currentTest?.state === 'failed' && agent !== undefined) {
        console.error(`--- agent process output ---\n${agent.output()}\n---`);
      }
    });

    it('logs "server rejected the agent token" and retries without a tight loop', async () => {
      const port = await proxy.listen();
      agent = await spawnAgentProcess([
        '--server',
        `ws://127.0.0.1:${port}`,
        '--token',
        'a-wrong-token',
        '--log-level',
        'info',
      ]);
      await agent.waitForOutput(/server rejected the agent token/, 20_000);
      const attemptsAtFirstLog = proxy.connections;
      // Retrying "no faster than its maximum backoff" (30 s) allows no further attempt in 3 s; even
      // the ordinary backoff (0.5 s, 1 s, ... with full jitter) would make at least two.
      await delay(3000);
      assert.equal(agent.child.exitCode, null, 'the agent keeps running (and retrying)');
      assert.ok(attemptsAtFirstLog >= 1, 'the agent dialled the server');
      const further = proxy.connections - attemptsAtFirstLog;
      assert.ok(further <= 1, `${further} more attempts in 3 s after the first refusal`);
      const lines = agent.output().split('\n');
      assert.ok(
        lines.filter((l) => l.includes('server rejected the agent token')).length <= 2,
        'the refusal is logged once, not on every attempt',
      );
      assert.equal(server.connectedAgents().length, 0, 'no agent got in');
    });
  });

  describe('a pinned server certificate (wss://)', () => {
    let certDir: string;
    let tls: { key: Buffer; cert: Buffer };
    let pin: string;
    let env: AgentEnv | undefined;

    before(async () => {
      certDir = await makeTempDir('cert');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          join(certDir, 'key.pem'),
          '-out',
          join(certDir, 'cert.pem'),
          '-days',
          '2',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      tls = {
        key: readFileSync(join(certDir, 'key.pem')),
        cert: readFileSync(join(certDir, 'cert.pem')),
      };
      pin = new X509Certificate(tls.cert).fingerprint256;
    });

    afterEach(async function () {
      env?.reportOnFailure(this);
      await env?.dispose();
      env = undefined;
    });

    after(async () => {
      await rm(certDir, { recursive: true, force: true });
    });

    it('refuses a server whose certificate does not match the pin, naming both fingerprints', async () => {
      const wrong = createHash('sha256').update('some other certificate').digest('hex');
      env = await AgentEnv.start({
        server: { tls },
        agent: { serverCertSha256: wrong },
        waitConnected: false,
      });
      const started = env;
      const hex = (text: string): string => text.replace(/:/g, '').toLowerCase();
      await eventually(
        () => started.log.find((r) => /fingerprint/i.test(r.message)) !== undefined,
        'a log line about the fingerprint',
      );
      const line = started.log.find((r) => /fingerprint/i.test(r.message));
      assert.ok(line);
      assert.equal(line.level, 'error', `an error line: ${line.message}`);
      assert.ok(
        hex(line.message).includes(hex(pin)),
        `names the server's fingerprint: ${line.message}`,
      );
      assert.ok(hex(line.message).includes(wrong), `names the pinned fingerprint: ${line.message}`);
      await delay(500);
      assert.deepEqual(started.hellos, [], 'the agent never said hello (nor sent its token)');
    });

    it('connects when the pin matches and runs a task', async () => {
      env = await AgentEnv.start({ server: { tls }, agent: { serverCertSha256: pin } });
      assert.match(env.server.url, /^wss:\/\//);
      const { handle, result } = await env.run(demoTask(uniqueTaskId('tls'), 'echo over tls'));
      assert.equal(result.outcome, 'success');
      assert.deepEqual(streamLines(handle, 'stdout'), ['over tls']);
    });
  });
});
