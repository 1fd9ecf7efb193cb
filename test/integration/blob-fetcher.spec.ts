/**
 * The agent's blob fetcher (packages, tool bundles) against a hand-driven server over a real
 * loopback socket, with a slow disk under it (PROTOCOL.md section 6): a transfer cut by a
 * disconnect and sent again after the reconnect, under the same number or a new one; what waits
 * for the disk stays bounded when the network outruns it; a `blob-begin` whose size is not the
 * task's. No Docker.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { BlobFetcher, PAUSE_ABOVE_BYTES } from '../../agent/blob-fetcher.js';
import {
  AgentConnection,
  CuttleError,
  decodeAgentMessage,
  encodeBlobFrame,
  encodeMessage,
  MAX_BLOB_CHUNK_BYTES,
  type AgentMessage,
  type Hello,
  type ServerMessage,
} from '../../protocol/index.js';
import { PackageCache } from '../../workspace/index.js';
import { eventually } from '../support/eventually.js';
import { withTimeout } from '../support/with-timeout.js';

const MiB = 1024 * 1024;

const sha256Of = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A file that takes `delayMs` for every write: a disk slower than the loopback network. */
class SlowFile extends Writable {
  readonly #path: string;
  readonly #disk: SlowDisk;

  constructor(path: string, disk: SlowDisk) {
    super();
    writeFileSync(path, '', { flag: 'wx', mode: 0o600 });
    this.#path = path;
    this.#disk = disk;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    setTimeout(() => {
      // An aborted transfer's file is removed: a late write must not bring it back.
      if (!this.destroyed) {
        appendFileSync(this.#path, chunk);
        this.#disk.written += chunk.byteLength;
      }
      callback();
    }, this.#disk.delayMs);
  }
}

class SlowDisk {
  /** Bytes on disk, over every file. */
  written = 0;
  constructor(readonly delayMs: number) {}
  readonly openFile = (path: string): Writable => new SlowFile(path, this);
}

/** One agent connection as the test's server sees it. */
class Peer {
  readonly messages: AgentMessage[] = [];

  constructor(
    readonly socket: WebSocket,
    readonly number: number,
  ) {}

  send(message: ServerMessage): void {
    this.socket.send(encodeMessage(message));
  }

  /** Resolves once every frame is handed to the kernel, so a terminate() after it drops none. */
  async frames(transfer: number, data: Buffer): Promise<void> {
    const sent: Promise<void>[] = [];
    for (let at = 0; at < data.byteLength; at += MAX_BLOB_CHUNK_BYTES) {
      const frame = encodeBlobFrame(transfer, data.subarray(at, at + MAX_BLOB_CHUNK_BYTES));
      sent.push(
        new Promise((resolve, reject) =>
          this.socket.send(frame, (error) => (error ? reject(error) : resolve())),
        ),
      );
    }
    await Promise.all(sent);
  }

  /**
   * A ping and its pong: the agent has handled everything sent before, and what it sent in
   * answer has arrived.
   */
  async roundTrip(): Promise<void> {
    const pong = once(this.socket, 'pong');
    this.socket.ping();
    await pong;
  }

  ofType<T extends AgentMessage['type']>(type: T): Extract<AgentMessage, { type: T }>[] {
    return this.messages.filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  }
}

/** Welcomes every agent and hands its `blob-request`s to `onRequest`. */
class FakeServer {
  readonly peers: Peer[] = [];
  /** What went wrong in the server's own steps; a test fails on any. */
  readonly failures: unknown[] = [];
  onRequest: (peer: Peer, sha256: string) => Promise<void> = async () => undefined;
  readonly #wss: WebSocketServer;

  private constructor(wss: WebSocketServer) {
    this.#wss = wss;
    wss.on('connection', (socket) => {
      const peer = new Peer(socket, this.peers.length + 1);
      this.peers.push(peer);
      socket.on('message', (data, isBinary) => {
        if (isBinary || !Buffer.isBuffer(data)) return;
        const message = decodeAgentMessage(data.toString('utf8'));
        peer.messages.push(message);
        if (message.type === 'hello') {
          peer.send({
            type: 'welcome',
            sessionId: `s-${peer.number}`,
            heartbeatMs: 15_000,
            resume: [],
          });
        } else if (message.type === 'blob-request') {
          this.onRequest(peer, message.sha256).catch((error: unknown) => this.failures.push(error));
        }
      });
    });
  }

  static async start(): Promise<FakeServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    return new FakeServer(wss);
  }

  get url(): string {
    const address: AddressInfo | string | null = this.#wss.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    return `ws://127.0.0.1:${address.port}/`;
  }

  get requests(): number {
    return this.peers.reduce((sum, peer) => sum + peer.ofType('blob-request').length, 0);
  }

  async close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    await new Promise((resolve) => this.#wss.close(resolve));
  }
}

const hello = (): Hello => ({
  type: 'hello',
  protocol: 1,
  agent: { id: 'w-blob', name: 'blob-test', version: '0.0.0' },
  capacity: 1,
  capabilities: { docker: null, hostExecution: false, shells: ['sh'], tools: [] },
  tasks: [],
});

describe('blob fetcher', function () {
  this.timeout(60_000);
  let dir: string;
  let server: FakeServer;
  let connection: AgentConnection;
  let cache: PackageCache;
  let disk: SlowDisk;
  let fetcher: BlobFetcher;

  /** Wired as agent/agent.ts wires it; resolves at the first welcome. */
  async function startAgent(packagesDir = join(dir, 'Packages')): Promise<void> {
    connection = new AgentConnection({
      url: server.url,
      token: 'blob-test-token',
      hello,
      // The reconnect comes at once, while the cut transfer may still be on its way to the disk.
      backoff: { initialMs: 10, maxMs: 20 },
    });
    cache = new PackageCache(packagesDir);
    fetcher = new BlobFetcher(connection, cache, { openFile: disk.openFile });
    connection.on('welcome', () => fetcher.onWelcome());
    connection.on('message', (message) => {
      if (message.type === 'blob-begin' || message.type === 'blob-end') fetcher.onMessage(message);
      if (message.type === 'blob-missing') fetcher.onMessage(message);
    });
    connection.on('blob-frame', (transfer, chunk) => fetcher.onFrame(transfer, chunk));
    connection.on('disconnected', () => fetcher.onDisconnect());
    const welcomed = once(connection, 'welcome');
    connection.start();
    await welcomed;
  }

  async function partFiles(): Promise<string[]> {
    return (await readdir(cache.dir)).filter((name) => name.endsWith('.part'));
  }

  async function assertCached(content: Buffer): Promise<void> {
    const sha256 = sha256Of(content);
    assert.equal(sha256Of(await readFile(cache.pathOf(sha256))), sha256);
    await eventually(async () => (await partFiles()).length === 0, 'no temp files left');
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-blob-fetcher-'));
    server = await FakeServer.start();
    disk = new SlowDisk(20);
  });

  afterEach(async () => {
    // Bounded: an exception inside ws's listener leaves its socket unable to report the close.
    await withTimeout(connection.stop(), 5_000, 'the agent connection to close');
    await withTimeout(server.close(), 5_000, 'the server to close');
    await rm(dir, { recursive: true, force: true });
    assert.deepEqual(server.failures, []);
  });

  /**
   * The first connection sends 20 of 24 MiB and is cut; the next sends the whole blob as
   * `transfer`. With the disk behind, the cut transfer's frames are still waiting for it when the
   * new `blob-begin` arrives.
   */
  function cutThenResend(content: Buffer, transfer: number): void {
    const sha256 = sha256Of(content);
    server.onRequest = async (peer) => {
      if (peer.number === 1) {
        peer.send({ type: 'blob-begin', transfer: 1, sha256, size: content.length });
        await peer.frames(1, content.subarray(0, 20 * MiB));
        peer.socket.terminate();
        return;
      }
      peer.send({ type: 'blob-begin', transfer, sha256, size: content.length });
      await peer.frames(transfer, content);
      peer.send({ type: 'blob-end', transfer });
    };
  }

  it('a transfer cut by a disconnect arrives whole when sent again under the same number', async () => {
    const content = randomBytes(24 * MiB);
    cutThenResend(content, 1);
    await startAgent();
    await withTimeout(fetcher.fetch(sha256Of(content), content.length), 30_000, 'the fetch');
    // An exception out of the socket's listener would have failed this test as uncaught.
    await assertCached(content);
    assert.equal(server.peers.length, 2);
  });

  it('a transfer cut by a disconnect arrives whole when sent again under a new number', async () => {
    const content = randomBytes(24 * MiB);
    cutThenResend(content, 2);
    await startAgent();
    await withTimeout(fetcher.fetch(sha256Of(content), content.length), 30_000, 'the fetch');
    await assertCached(content);
    assert.equal(server.peers.length, 2);
  });

  it('stops reading while the disk is behind, so what waits for the disk stays bounded', async () => {
    const content = randomBytes(32 * MiB);
    const sha256 = sha256Of(content);
    server.onRequest = async (peer) => {
      peer.send({ type: 'blob-begin', transfer: 1, sha256, size: content.length });
      await peer.frames(1, content);
      peer.send({ type: 'blob-end', transfer: 1 });
    };
    await startAgent();
    // Bytes the socket handed to the agent that the disk has not taken yet: the agent holds them.
    let received = 0;
    let most = 0;
    connection.on('blob-frame', (_transfer, chunk) => {
      received += chunk.byteLength;
      most = Math.max(most, received - disk.written);
    });
    await withTimeout(fetcher.fetch(sha256, content.length), 30_000, 'the fetch');
    await assertCached(content);
    // The frame that crosses the bound, and one more that ws may have had in hand at the pause.
    const bound = PAUSE_ABOVE_BYTES + 2 * MAX_BLOB_CHUNK_BYTES;
    assert.ok(most <= bound, `${most} bytes waited for the disk (bound ${bound})`);
    // Otherwise the disk kept up, and this test showed nothing.
    assert.ok(most > PAUSE_ABOVE_BYTES / 2, `only ${most} bytes ever waited for the disk`);
  });

  /**
   * Copies announced with a size other than the task's (and sent at that size), one per request,
   * then good copies. Before each blob-end a round trip shows that nothing was answered early.
   */
  function wrongSizeCopies(content: Buffer, wrongCopies: number): void {
    const sha256 = sha256Of(content);
    const wrong = Buffer.concat([content, Buffer.from('trailing bytes')]);
    let transfer = 0;
    server.onRequest = async (peer) => {
      transfer += 1;
      const copy = transfer <= wrongCopies ? wrong : content;
      peer.send({ type: 'blob-begin', transfer, sha256, size: copy.length });
      await peer.frames(transfer, copy);
      await peer.roundTrip();
      assert.equal(peer.ofType('error').length, transfer - 1, 'an answer before blob-end');
      peer.send({ type: 'blob-end', transfer });
    };
  }

  it('a blob-begin of another size than the task gives is answered blob-corrupt at blob-end and asked for again', async () => {
    const content = randomBytes(3 * MiB + 5);
    wrongSizeCopies(content, 1);
    await startAgent();
    await withTimeout(fetcher.fetch(sha256Of(content), content.length), 10_000, 'the fetch');
    await assertCached(content);
    const [peer] = server.peers;
    assert.ok(peer !== undefined);
    assert.deepEqual(
      peer.messages.map((m) => (m.type === 'error' ? `${m.type} ${m.code} ${m.transfer}` : m.type)),
      ['hello', 'blob-request', 'error blob-corrupt 1', 'blob-request'],
    );
  });

  it('a second copy of another size than the task gives ends the fetch with blob-corrupt', async () => {
    const content = randomBytes(3 * MiB + 5);
    wrongSizeCopies(content, 2);
    await startAgent();
    await assert.rejects(
      withTimeout(fetcher.fetch(sha256Of(content), content.length), 10_000, 'the fetch'),
      (error) => error instanceof CuttleError && error.code === 'blob-corrupt',
    );
    const [peer] = server.peers;
    assert.ok(peer !== undefined);
    // Whatever the agent sent when it gave up has arrived by now: no third request.
    await peer.roundTrip();
    assert.deepEqual(
      peer.messages.map((m) => (m.type === 'error' ? `${m.type} ${m.code} ${m.transfer}` : m.type)),
      ['hello', 'blob-request', 'error blob-corrupt 1', 'blob-request', 'error blob-corrupt 2'],
    );
    assert.equal(await cache.has(sha256Of(content)), false);
  });

  it('a blob whose cache folder cannot be made fails its fetch, not the process', async () => {
    const content = randomBytes(1000);
    const sha256 = sha256Of(content);
    const notAFolder = join(dir, 'not-a-folder');
    await writeFile(notAFolder, '');
    server.onRequest = async (peer) => {
      peer.send({ type: 'blob-begin', transfer: 1, sha256, size: content.length });
      await peer.frames(1, content);
      peer.send({ type: 'blob-end', transfer: 1 });
    };
    await startAgent(join(notAFolder, 'Packages'));
    await assert.rejects(
      withTimeout(fetcher.fetch(sha256, content.length), 10_000, 'the fetch'),
      (error) => error instanceof CuttleError && error.code === 'workspace-error',
    );
  });
});
