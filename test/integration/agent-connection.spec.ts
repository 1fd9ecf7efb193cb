import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  AgentConnection,
  type AgentConnectionOptions,
  type DisconnectInfo,
  type ServerMessageAfterWelcome,
} from '../../protocol/agent-connection.js';
import { decodeAgentMessage, encodeMessage } from '../../protocol/codec.js';
import { CuttleError, MAX_ERROR_TEXT_CHARS } from '../../protocol/errors.js';
import {
  MAX_TEXT_FRAME_BYTES,
  type AgentMessage,
  type Hello,
  type ServerMessage,
  type Welcome,
} from '../../protocol/messages.js';
import { AgentSession, type SessionHost } from '../../protocol/reference-server/agent-session.js';
import { certificateFingerprint, formatFingerprint } from '../../protocol/tls-pin.js';
import { eventually } from '../support/eventually.js';

const TOKEN = 'secret-agent-token';

const hello = (): Hello => ({
  type: 'hello',
  protocol: 1,
  agent: { id: 'w-01', name: 'test-worker', version: '0.0.0' },
  capacity: 1,
  capabilities: { docker: null, hostExecution: false, shells: ['sh'], tools: [] },
  tasks: [],
});

/** One agent connection as the fake server sees it. */
class Peer {
  readonly messages: AgentMessage[] = [];
  readonly undecodable: string[] = [];
  readonly binaries: Buffer[] = [];
  /** The size in bytes of every text frame, as received. */
  readonly textBytes: number[] = [];
  /** Valid messages and binary frames together, in the order they arrived. */
  readonly arrivals: (AgentMessage | Buffer)[] = [];
  readonly openedAt = performance.now();
  pings = 0;
  closeCode: number | undefined;
  closedAt: number | undefined;
  readonly #onHello: (() => void)[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        if (Buffer.isBuffer(data)) {
          this.binaries.push(data);
          this.arrivals.push(data);
        }
        return;
      }
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : '';
      this.textBytes.push(Buffer.isBuffer(data) ? data.byteLength : 0);
      try {
        // Validating what the agent sends with the protocol's own decoder.
        const message = decodeAgentMessage(text);
        this.messages.push(message);
        this.arrivals.push(message);
        if (message.type === 'hello') this.#onHello.splice(0).forEach((run) => run());
      } catch {
        this.undecodable.push(text);
      }
    });
    socket.on('ping', () => (this.pings += 1));
    socket.on('close', (code) => {
      this.closeCode = code;
      this.closedAt = performance.now();
    });
  }

  /** Runs `action` once the agent's hello has arrived, as a real server would. */
  afterHello(action: () => void): void {
    if (this.ofType('hello').length > 0) action();
    else this.#onHello.push(action);
  }

  send(message: ServerMessage): void {
    this.socket.send(encodeMessage(message));
  }

  welcome(heartbeatMs = 15_000): void {
    this.send({ type: 'welcome', sessionId: 's-1', heartbeatMs, resume: [] });
  }

  ofType<T extends AgentMessage['type']>(type: T): Extract<AgentMessage, { type: T }>[] {
    return this.messages.filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  }
}

/**
 * A minimal stand-in for a cuttle server, written for these tests because they target the client:
 * it checks the bearer token (401 otherwise), accepts the `cuttle.v1` subprotocol and records what
 * the agent sends. By default it answers every hello with `welcome`.
 */
class FakeServer {
  readonly upgrades: { authorization: string | undefined; protocol: string | undefined }[] = [];
  readonly peers: Peer[] = [];
  tcpConnections = 0;
  plainRequests = 0;
  onPeer: (peer: Peer) => void = (peer) => peer.afterHello(() => peer.welcome());
  readonly #server: http.Server;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Set<Socket>();

  private constructor(server: http.Server, autoPong: boolean) {
    this.#server = server;
    this.#wss = new WebSocketServer({ noServer: true, autoPong });
    server.on('connection', (socket: Socket) => {
      this.tcpConnections += 1;
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
      this.plainRequests += 1;
      response.writeHead(426).end();
    });
    server.on('upgrade', (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
      this.upgrades.push({
        authorization: request.headers.authorization,
        protocol: request.headers['sec-websocket-protocol'],
      });
      if (request.headers.authorization !== `Bearer ${TOKEN}`) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        const peer = new Peer(ws);
        this.peers.push(peer);
        this.onPeer(peer);
      });
    });
  }

  static async start(
    options: { tls?: { key: Buffer; cert: Buffer }; autoPong?: boolean } = {},
  ): Promise<FakeServer> {
    const server =
      options.tls === undefined ? http.createServer() : https.createServer(options.tls);
    const fake = new FakeServer(server, options.autoPong ?? true);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  url(scheme: 'ws' | 'wss' = 'ws'): string {
    const address = this.#server.address();
    assert.ok(typeof address === 'object' && address !== null);
    return `${scheme}://127.0.0.1:${address.port}/agent`;
  }

  peer(index: number): Peer {
    const peer = this.peers[index];
    assert.ok(peer, `no connection #${index}`);
    return peer;
  }

  async close(): Promise<void> {
    for (const peer of this.peers) peer.socket.terminate();
    for (const socket of this.#sockets) socket.destroy();
    this.#wss.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** An AgentConnection with everything it emits recorded. */
interface Recorded {
  connection: AgentConnection;
  welcomes: Welcome[];
  messages: ServerMessageAfterWelcome[];
  blobFrames: { transfer: number; chunk: Buffer }[];
  disconnects: DisconnectInfo[];
  problems: CuttleError[];
}

describe('AgentConnection (against a minimal fake server)', function () {
  this.timeout(10_000);
  const cleanups: (() => Promise<void>)[] = [];
  let certDir: string;
  let tls: { key: Buffer; cert: Buffer; certPath: string; fingerprint: string };

  before(function () {
    certDir = mkdtempSync(join(tmpdir(), 'cuttle-connection-'));
    const keyPath = join(certDir, 'key.pem');
    const certPath = join(certDir, 'cert.pem');
    // A throwaway self-signed certificate for 127.0.0.1, made by the openssl CLI.
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
        keyPath,
        '-out',
        certPath,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
    const cert = readFileSync(certPath);
    tls = {
      key: readFileSync(keyPath),
      cert,
      certPath,
      // Node's own colon-separated upper-case form, computed independently of tls-pin.ts.
      fingerprint: new X509Certificate(cert).fingerprint256,
    };
  });

  after(() => rmSync(certDir, { recursive: true, force: true }));

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function server(options: { tls?: boolean; autoPong?: boolean } = {}): Promise<FakeServer> {
    const fake = await FakeServer.start({
      ...(options.tls === true ? { tls: { key: tls.key, cert: tls.cert } } : {}),
      autoPong: options.autoPong ?? true,
    });
    cleanups.push(() => fake.close());
    return fake;
  }

  function connect(options: Partial<AgentConnectionOptions> & { url: string }): Recorded {
    const connection = new AgentConnection({
      token: TOKEN,
      hello,
      backoff: { initialMs: 10, maxMs: 100 },
      ...options,
    });
    const recorded: Recorded = {
      connection,
      welcomes: [],
      messages: [],
      blobFrames: [],
      disconnects: [],
      problems: [],
    };
    connection.on('welcome', (welcome) => recorded.welcomes.push(welcome));
    connection.on('message', (message) => recorded.messages.push(message));
    connection.on('blob-frame', (transfer, chunk) => recorded.blobFrames.push({ transfer, chunk }));
    connection.on('disconnected', (info) => recorded.disconnects.push(info));
    connection.on('problem', (problem) => recorded.problems.push(problem));
    cleanups.push(() => connection.stop());
    connection.start();
    return recorded;
  }

  const hasCode = (code: string) => (error: unknown) =>
    error instanceof CuttleError && error.code === code;

  describe('configuration', () => {
    it('refuses ws:// to a non-loopback host unless insecure is allowed', () => {
      assert.throws(
        () => new AgentConnection({ url: 'ws://example.com/agent', token: TOKEN, hello }),
        (error) =>
          hasCode('insecure-transport')(error) &&
          error instanceof Error &&
          error.message.includes('example.com'),
      );
      for (const url of ['ws://localhost:1', 'ws://127.0.0.9:1', 'ws://[::1]:1']) {
        assert.doesNotThrow(() => new AgentConnection({ url, token: TOKEN, hello }), url);
      }
      assert.doesNotThrow(
        () =>
          new AgentConnection({
            url: 'ws://example.com',
            token: TOKEN,
            hello,
            allowInsecure: true,
          }),
      );
    });

    it('refuses bad URLs, tokens and pins with config-invalid', () => {
      const bad: Partial<AgentConnectionOptions>[] = [
        { url: 'not a url' },
        { url: 'https://example.com' },
        { url: 'wss://user:pw@example.com' },
        { url: 'wss://example.com', token: '' },
        { url: 'wss://example.com', certSha256: 'abc' },
        { url: 'ws://localhost', certSha256: 'ab'.repeat(32) },
        { url: 'wss://example.com', caFile: '/nonexistent/ca.pem' },
      ];
      for (const options of bad) {
        assert.throws(
          () => new AgentConnection({ url: 'wss://x', token: TOKEN, hello, ...options }),
          hasCode('config-invalid'),
          JSON.stringify(options),
        );
      }
    });
  });

  describe('handshake', () => {
    it('sends the bearer token and subprotocol, hello first, and is connected after welcome', async () => {
      const fake = await server();
      fake.onPeer = () => undefined; // hold back welcome to observe the state before it
      const agent = connect({ url: fake.url() });

      await eventually(() => fake.peers.length === 1, 'the agent connects');
      assert.deepEqual(fake.upgrades, [
        { authorization: `Bearer ${TOKEN}`, protocol: 'cuttle.v1' },
      ]);
      const peer = fake.peer(0);
      await eventually(() => peer.messages.length === 1, 'hello arrives');
      assert.equal(peer.messages[0]?.type, 'hello');
      assert.equal(agent.connection.connected, false);
      assert.equal(agent.connection.send({ type: 'drained' }), false);
      await assert.rejects(
        agent.connection.sendAsync({ type: 'drained' }),
        hasCode('connection-refused'),
      );

      peer.welcome();
      await eventually(() => agent.welcomes.length === 1, 'welcome is emitted');
      assert.equal(agent.connection.connected, true);
      assert.equal(agent.welcomes[0]?.sessionId, 's-1');
      await agent.connection.sendAsync({ type: 'accepted', taskId: 'T-1' });
      assert.equal(agent.connection.send({ type: 'drained' }), true);
      await agent.connection.sendText(encodeMessage({ type: 'blob-end', transfer: 3 }));
      await agent.connection.sendBinaryInPlace(Buffer.from([0, 0, 0, 3, 0x78]));
      await eventually(() => peer.messages.length === 4, 'messages after welcome arrive');
      assert.deepEqual(
        peer.messages.map((m) => m.type),
        ['hello', 'accepted', 'drained', 'blob-end'],
      );
      await eventually(() => peer.binaries.length === 1, 'the binary frame arrives');
      assert.deepEqual(peer.binaries[0], Buffer.from([0, 0, 0, 3, 0x78]));
      assert.deepEqual(peer.undecodable, []);
      assert.deepEqual(agent.problems, []);
    });

    it('answers a message sent before welcome with error and does not pass it on', async () => {
      const fake = await server();
      fake.onPeer = (peer) => {
        peer.send({ type: 'ack', taskId: 'T-1', seq: 1 });
        peer.welcome();
      };
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      const peer = fake.peer(0);
      await eventually(() => peer.ofType('error').length === 1, 'the error answer');
      assert.equal(peer.ofType('error')[0]?.ref, 'T-1');
      assert.deepEqual(agent.messages, []);
    });

    it('reports a wrong token once as unauthorized and retries no faster than maxMs', async () => {
      const fake = await server();
      const agent = connect({
        url: fake.url(),
        token: 'wrong',
        backoff: { initialMs: 10, maxMs: 300 },
      });
      await eventually(() => agent.problems.length > 0, 'a problem');
      await delay(800);
      // Attempts at about 0, 300 and 600 ms. A backoff starting at 10 ms would have made many more.
      assert.ok(
        fake.upgrades.length >= 2 && fake.upgrades.length <= 4,
        `${fake.upgrades.length} attempts`,
      );
      assert.equal(agent.problems.length, 1);
      assert.equal(agent.problems[0]?.code, 'unauthorized');
      assert.equal(agent.problems[0]?.message, 'server rejected the agent token');
      assert.equal(agent.connection.connected, false);
      assert.deepEqual(agent.welcomes, []);
    });

    it('reports 4009 as replaced and retries only at maxMs', async () => {
      const fake = await server();
      fake.onPeer = (peer) =>
        peer.afterHello(() => {
          peer.welcome();
          peer.socket.close(4009, 'replaced by a newer connection');
        });
      const agent = connect({ url: fake.url(), backoff: { initialMs: 10, maxMs: 400 } });
      await eventually(() => fake.peers.length === 2, 'the agent comes back', 3000);
      const closedAt = fake.peer(0).closedAt;
      assert.ok(closedAt !== undefined);
      const gap = fake.peer(1).openedAt - closedAt;
      assert.ok(gap >= 350, `reconnected after ${Math.round(gap)} ms`);
      const replaced = agent.problems.find((p) => p.code === 'replaced');
      assert.equal(
        replaced?.message,
        'another agent uses this agent id: was its home folder copied?',
      );
      assert.equal(agent.disconnects[0]?.code, 4009);
      assert.equal(agent.disconnects[0]?.error?.code, 'replaced');
    });

    it('reports 4001 naming the versions the server gave', async () => {
      const fake = await server();
      fake.onPeer = (peer) =>
        peer.afterHello(() => peer.socket.close(4001, 'this server speaks protocol 2'));
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.problems.length > 0, 'a problem');
      assert.match(agent.problems[0]?.message ?? '', /this server speaks protocol 2/);
      assert.deepEqual(agent.disconnects, []); // never welcomed, so never "disconnected"
    });
  });

  describe('TLS', () => {
    it('connects to a self-signed server whose pinned fingerprint matches', async () => {
      const fake = await server({ tls: true });
      const pin = tls.fingerprint.toLowerCase(); // any case, colons optional
      const agent = connect({ url: fake.url('wss'), certSha256: pin });
      await eventually(() => agent.welcomes.length === 1, 'welcome over wss');
      assert.equal(fake.upgrades[0]?.authorization, `Bearer ${TOKEN}`);
      assert.deepEqual(agent.problems, []);
    });

    it('refuses a certificate that does not match the pin, before sending the token', async () => {
      const fake = await server({ tls: true });
      const wrong = certificateFingerprint(Buffer.from('some other certificate'));
      const agent = connect({ url: fake.url('wss'), certSha256: wrong });
      await eventually(() => agent.problems.length > 0, 'a problem');
      const problem = agent.problems[0];
      assert.equal(problem?.code, 'certificate-mismatch');
      assert.ok(problem?.message.includes(tls.fingerprint), problem?.message);
      assert.ok(problem?.message.includes(formatFingerprint(wrong)), problem?.message);
      // The agent reached the server, but no HTTP request (with the token) followed.
      assert.ok(fake.tcpConnections > 0);
      await delay(100);
      assert.deepEqual(fake.upgrades, []);
      assert.equal(fake.plainRequests, 0);
      assert.deepEqual(agent.welcomes, []);
    });

    it('connects when caFile trusts the server certificate', async () => {
      const fake = await server({ tls: true });
      const agent = connect({ url: fake.url('wss'), caFile: tls.certPath });
      await eventually(() => agent.welcomes.length === 1, 'welcome over wss');
      assert.deepEqual(agent.problems, []);
    });

    it('refuses a self-signed certificate with neither caFile nor pin (system CAs)', async () => {
      const fake = await server({ tls: true });
      const agent = connect({ url: fake.url('wss') });
      await eventually(() => agent.problems.length > 0, 'a problem');
      assert.equal(agent.problems[0]?.code, 'connection-refused');
      assert.match(agent.problems[0]?.message ?? '', /self[- ]signed/i);
      assert.ok(agent.problems[0]?.cause instanceof Error);
      await delay(100);
      assert.deepEqual(fake.upgrades, []);
      assert.deepEqual(agent.welcomes, []);
    });
  });

  describe('blob frames', () => {
    /** A frame of `size` bytes: the transfer number, then bytes that differ from frame to frame. */
    const blobFrame = (transfer: number, size: number): Buffer => {
      const frame = Buffer.alloc(size, transfer % 251);
      frame.writeUInt32BE(transfer, 0);
      return frame;
    };
    // Every payload-length encoding of RFC 6455 (7, 16 and 64 bits) and its edges, up to the most
    // a blob frame may be (4 + 1 MiB).
    const sizes = [4, 125, 126, 127, 65_535, 65_536, 65_537, 4 + 1024 * 1024];

    for (const scheme of ['ws', 'wss'] as const) {
      it(`arrive intact and in order among text messages (${scheme})`, async () => {
        const fake = await server({ tls: scheme === 'wss' });
        const agent = connect({
          url: fake.url(scheme),
          ...(scheme === 'wss' ? { caFile: tls.certPath } : {}),
        });
        await eventually(() => agent.welcomes.length === 1, 'welcome');
        const peer = fake.peer(0);
        const expected: (AgentMessage | Buffer)[] = [];
        const sends: Promise<void>[] = [];
        // Not awaited one by one, so text and binary frames queue on the socket together.
        for (let round = 0; round < 3; round += 1) {
          for (const [index, size] of sizes.entries()) {
            const transfer = round * sizes.length + index;
            const end: AgentMessage = { type: 'blob-end', transfer };
            const frame = blobFrame(transfer, size);
            expected.push(Buffer.from(frame), end);
            sends.push(agent.connection.sendBinaryInPlace(frame));
            sends.push(agent.connection.sendText(encodeMessage(end)));
          }
        }
        await Promise.all(sends);
        await eventually(() => peer.arrivals.length === 1 + expected.length, 'all frames arrive');
        assert.deepEqual(peer.arrivals.slice(1), expected);
        assert.deepEqual(peer.undecodable, []);
        assert.equal(peer.closeCode, undefined, 'the server took every frame as valid');
      });
    }

    it('are masked in place, each with a mask key of its own', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      const frames = [Buffer.alloc(64), Buffer.alloc(64)];
      for (const frame of frames) await agent.connection.sendBinaryInPlace(frame);
      await eventually(() => fake.peer(0).binaries.length === 2, 'both frames arrive');
      assert.deepEqual(fake.peer(0).binaries, [Buffer.alloc(64), Buffer.alloc(64)]);
      // Zeros masked in place become the mask key, repeated: the caller's buffer shows it.
      for (const frame of frames) {
        const key = frame.subarray(0, 4);
        assert.deepEqual(frame, Buffer.concat(Array.from({ length: 16 }, () => key)));
      }
      assert.notDeepEqual(frames[0]?.subarray(0, 4), frames[1]?.subarray(0, 4));
    });
  });

  describe('incoming frames', () => {
    it('answers malformed messages with error and stays connected', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      const peer = fake.peer(0);
      peer.socket.send('{not json');
      peer.socket.send(JSON.stringify({ type: 'no-such-type', taskId: 'T-3' }));
      peer.socket.send(JSON.stringify({ type: 'ack', taskId: 'T-3' }));
      peer.socket.send(Buffer.from([0, 1]), { binary: true });
      peer.send({ type: 'ack', taskId: 'T-3', seq: 4 });

      await eventually(() => agent.messages.length === 1, 'the valid ack');
      assert.deepEqual(agent.messages[0], { type: 'ack', taskId: 'T-3', seq: 4 });
      await eventually(() => peer.ofType('error').length === 4, 'four error answers');
      assert.deepEqual(
        peer.ofType('error').map((e) => [e.code, e.ref]),
        [
          ['invalid-message', undefined],
          ['unknown-type', 'T-3'],
          ['invalid-message', 'T-3'],
          ['invalid-message', undefined],
        ],
      );
      assert.match(peer.ofType('error')[2]?.message ?? '', /seq/);
      assert.equal(agent.connection.connected, true);
      assert.equal(fake.peers.length, 1);
      assert.equal(agent.problems.length, 4);
    });

    it('rejects an invalid task that has a valid taskId with invalid-task', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      const peer = fake.peer(0);
      peer.socket.send(
        JSON.stringify({ type: 'task', taskId: 'T-7', script: { syntax: 'fish', body: 'echo' } }),
      );
      await eventually(() => peer.ofType('rejected').length === 1, 'the rejection');
      const rejected = peer.ofType('rejected')[0];
      assert.equal(rejected?.taskId, 'T-7');
      assert.equal(rejected?.code, 'invalid-task');
      assert.match(rejected?.message ?? '', /script\.syntax/);
      assert.deepEqual(agent.messages, []);
      assert.equal(agent.connection.connected, true);
    });

    it('answers frames with thousands of faults or a huge ref within the frame limit, and stays connected', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      const peer = fake.peer(0);
      // A task with 40,000 invalid variables (~880 KB): unbounded, its `rejected` was ~2.4 MB,
      // and the throw of the size check in the ws listener ended the agent.
      const manyFaults = JSON.stringify({
        type: 'task',
        taskId: 'T-big',
        script: { syntax: 'sh', body: 'true' },
        variables: Array.from({ length: 40_000 }, () => ({ name: 1, value: '' })),
      });
      assert.ok(Buffer.byteLength(manyFaults) < MAX_TEXT_FRAME_BYTES);
      peer.socket.send(manyFaults);
      // A cancel whose taskId fills the frame: echoed as `ref`, the `error` was over the limit.
      const hugeRef = JSON.stringify({
        type: 'cancel',
        taskId: 'x'.repeat(MAX_TEXT_FRAME_BYTES - 40),
      });
      assert.ok(Buffer.byteLength(hugeRef) <= MAX_TEXT_FRAME_BYTES);
      peer.socket.send(hugeRef);
      peer.send({ type: 'ack', taskId: 'T-3', seq: 4 });

      await eventually(() => agent.messages.length === 1, 'the valid ack after them', 5_000);
      await eventually(
        () => peer.ofType('error').length === 1,
        'the error about the cancel',
        5_000,
      );
      const rejected = peer.ofType('rejected');
      assert.equal(rejected.length, 1);
      assert.equal(rejected[0]?.taskId, 'T-big');
      assert.equal(rejected[0]?.code, 'invalid-task');
      assert.match(rejected[0]?.message ?? '', /^task\.variables\.0\.name: expected string/);
      assert.match(rejected[0]?.message ?? '', /and 39990 more issues$/);
      const error = peer.ofType('error')[0];
      assert.equal(error?.code, 'invalid-message');
      assert.ok((error?.ref?.length ?? 0) < 200, 'the ref is clipped');
      assert.ok(Math.max(...peer.textBytes) <= MAX_TEXT_FRAME_BYTES, 'every answer fits');
      assert.deepEqual(peer.undecodable, []);
      assert.equal(agent.connection.connected, true);
      assert.deepEqual(agent.disconnects, []);
      assert.equal(fake.peers.length, 1);
    });

    it('survives a listener that throws, reporting it as internal, and handles the next frame', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      agent.connection.on('message', (message) => {
        if (message.type === 'drain') throw new Error('a bug in a listener');
      });
      const peer = fake.peer(0);
      peer.send({ type: 'drain' });
      peer.send({ type: 'ack', taskId: 'T-3', seq: 4 });
      await eventually(() => agent.messages.length === 2, 'the drain and the ack after it', 5_000);
      const internal = agent.problems.filter((problem) => problem.code === 'internal');
      assert.equal(internal.length, 1);
      assert.match(internal[0]?.message ?? '', /a bug in a listener/);
      assert.equal(agent.connection.connected, true);
      assert.deepEqual(agent.disconnects, []);
      // A bug of the agent's own is not the server's fault: nothing is answered.
      assert.deepEqual(peer.ofType('error'), []);
    });

    it("gets the reference server's errors clipped to fit in a frame, so it stays connected", async () => {
      const fake = await server();
      const failures: CuttleError[] = [];
      const host: SessionHost = {
        onHello: async () => undefined,
        onMessage: async () => undefined,
        onAnyMessage: () => undefined,
        blobDestination: () => assert.fail('no blobs in this test'),
        onBlobReceived: () => undefined,
        onClose: () => undefined,
        onFailure: (error) => failures.push(error),
        onInboxEmpty: () => undefined,
      };
      let session: AgentSession | undefined;
      fake.onPeer = (peer) => {
        session = new AgentSession(peer.socket, host, 15_000);
        peer.afterHello(() => peer.welcome());
      };
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      // Unclipped, a frame over the agent's limit: it closed the connection with 1009.
      session?.sendError('internal', 'x'.repeat(2 * MAX_TEXT_FRAME_BYTES), {
        ref: 'y'.repeat(MAX_TEXT_FRAME_BYTES),
      });
      await eventually(
        () => agent.messages.length === 1 || agent.disconnects.length > 0,
        'the error, or a disconnect',
        5_000,
      );
      assert.deepEqual(agent.disconnects, []);
      const error = agent.messages[0];
      assert.ok(error?.type === 'error');
      assert.equal(error.code, 'internal');
      assert.ok(error.message.length < MAX_ERROR_TEXT_CHARS + 100, 'the message is clipped');
      assert.ok((error.ref?.length ?? 0) < 200, 'the ref is clipped');
      assert.equal(agent.connection.connected, true);
      assert.deepEqual(failures, []);
    });

    it('passes blob frames on with their transfer number', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      fake.peer(0).socket.send(Buffer.from([0, 0, 0, 7, 0x61, 0x62, 0x63]), { binary: true });
      await eventually(() => agent.blobFrames.length === 1, 'the blob frame');
      assert.equal(agent.blobFrames[0]?.transfer, 7);
      assert.equal(agent.blobFrames[0]?.chunk.toString(), 'abc');
    });
  });

  describe('liveness and reconnects', () => {
    it('reconnects after the server drops, sending hello again', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'first welcome');
      let connectedWhenDisconnected: boolean | undefined;
      agent.connection.once('disconnected', () => {
        connectedWhenDisconnected = agent.connection.connected;
      });
      fake.peer(0).socket.terminate();
      await eventually(() => agent.disconnects.length === 1, 'disconnected');
      assert.equal(connectedWhenDisconnected, false);
      await eventually(() => agent.welcomes.length === 2, 'second welcome');
      assert.equal(fake.peers.length, 2);
      assert.equal(fake.peer(1).messages[0]?.type, 'hello');
      assert.equal(agent.connection.connected, true);
    });

    it('keeps a connection whose server answers pings', async () => {
      const fake = await server();
      fake.onPeer = (peer) => peer.afterHello(() => peer.welcome(200));
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      await delay(900);
      assert.ok(fake.peer(0).pings >= 3, `${fake.peer(0).pings} pings`);
      assert.equal(fake.peers.length, 1);
      assert.equal(agent.connection.connected, true);
    });

    it('drops a silent server after 2 x heartbeatMs and reconnects', async () => {
      // autoPong off: the server reads the pings but never answers, and sends nothing after welcome.
      const fake = await server({ autoPong: false });
      fake.onPeer = (peer) => peer.afterHello(() => peer.welcome(200));
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      await eventually(() => fake.peers.length === 2, 'a new connection', 2000);
      const first = fake.peer(0);
      assert.ok(first.closedAt !== undefined);
      const lived = first.closedAt - first.openedAt;
      assert.ok(lived >= 350 && lived < 1000, `first connection lived ${Math.round(lived)} ms`);
      assert.ok(first.pings >= 1, 'the agent pinged');
      assert.match(agent.disconnects[0]?.reason ?? '', /silent for 400 ms/);
    });

    it('stops reconnecting after stop()', async () => {
      const fake = await server();
      const agent = connect({ url: fake.url() });
      await eventually(() => agent.welcomes.length === 1, 'welcome');
      await agent.connection.stop();
      assert.equal(agent.connection.connected, false);
      await eventually(() => fake.peer(0).closeCode !== undefined, 'the server sees the close');
      assert.equal(fake.peer(0).closeCode, 1000);
      await delay(300);
      assert.equal(fake.peers.length, 1);
      assert.equal(agent.disconnects.length, 1);
    });
  });
});
