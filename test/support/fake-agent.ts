/**
 * A hand-driven agent over a raw `ws` client, for testing the reference server: it sends exactly
 * what a test tells it to and records what the server answers, decoded with the protocol's own
 * decoder. Blobs the server sends are received with BlobReceiver into `blobDir`.
 */
import { join } from 'node:path';
import WebSocket from 'ws';
import { BlobReceiver, type ReceivedBlob } from '../../protocol/blob-stream.js';
import { decodeBlobFrame, decodeServerMessage, encodeMessage } from '../../protocol/codec.js';
import { CuttleError } from '../../protocol/errors.js';
import { rawDataToBuffer } from '../../protocol/raw-data.js';
import {
  SUBPROTOCOL,
  type AgentMessage,
  type Hello,
  type ServerMessage,
  type Welcome,
} from '../../protocol/messages.js';

export interface FakeAgentOptions {
  token?: string | undefined;
  /** Subprotocols offered; default `cuttle.v1`. */
  protocols?: string[];
  blobDir?: string;
}

export type BlobOutcome =
  { transfer: number; blob: ReceivedBlob } | { transfer: number; error: CuttleError };

type Waiter<T> = {
  match: (item: T) => boolean;
  resolve: (item: T) => void;
};

/** Items in arrival order, handed to whoever waits for a matching one. */
class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: Waiter<T>[] = [];

  push(item: T): void {
    const index = this.#waiters.findIndex((waiter) => waiter.match(item));
    const waiter = this.#waiters[index];
    if (waiter === undefined) {
      this.#items.push(item);
      return;
    }
    this.#waiters.splice(index, 1);
    waiter.resolve(item);
  }

  take(match: (item: T) => boolean, what: string, timeoutMs: number): Promise<T> {
    const index = this.#items.findIndex(match);
    const item = this.#items[index];
    if (item !== undefined) {
      this.#items.splice(index, 1);
      return Promise.resolve(item);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = {
        match,
        resolve: (found) => {
          clearTimeout(timer);
          resolve(found);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Everything received and not taken yet. */
  peek(): readonly T[] {
    return this.#items;
  }
}

export function makeHello(overrides: Partial<Hello> & { id?: string } = {}): Hello {
  const { id, ...rest } = overrides;
  return {
    type: 'hello',
    protocol: 1,
    agent: { id: id ?? 'w-01', name: 'fake-agent', version: '0.0.0' },
    capacity: 4,
    capabilities: { docker: null, hostExecution: true, shells: ['bash', 'sh'], tools: [] },
    tasks: [],
    ...rest,
  };
}

export class FakeAgent {
  readonly messages = new Inbox<ServerMessage>();
  readonly blobs = new Inbox<BlobOutcome>();
  /** Raw binary frames as received (before the blob receiver). */
  readonly frames: Buffer[] = [];
  readonly undecodable: string[] = [];
  /** Anything that went wrong handling a frame (an unknown transfer, say). */
  readonly failures: unknown[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #ws: WebSocket;
  readonly #receiver = new BlobReceiver();
  readonly #blobDir: string | undefined;
  #chain: Promise<void> = Promise.resolve();

  private constructor(ws: WebSocket, blobDir: string | undefined) {
    this.#ws = ws;
    this.#blobDir = blobDir;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
    });
    ws.on('message', (data, isBinary) => {
      const buffer = rawDataToBuffer(data);
      // One at a time, like a real agent: a blob's end is handled after its last chunk is written.
      this.#chain = this.#chain
        .then(() => this.#receive(buffer, isBinary))
        .catch((error: unknown) => {
          this.failures.push(error);
        });
    });
  }

  /** Opens a connection; rejects with the HTTP status if the server refuses the upgrade. */
  static connect(url: string, options: FakeAgentOptions = {}): Promise<FakeAgent> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const ws = new WebSocket(url, options.protocols ?? [SUBPROTOCOL], { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new FakeAgent(ws, options.blobDir)));
      ws.once('unexpected-response', (_request, response) => {
        reject(new HttpRefusal(response.statusCode ?? 0));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  /** Connects, says hello and waits for the welcome. */
  static async join(
    url: string,
    options: FakeAgentOptions & { hello?: Hello },
  ): Promise<{ agent: FakeAgent; welcome: Welcome }> {
    const agent = await FakeAgent.connect(url, options);
    await agent.send(options.hello ?? makeHello());
    const welcome = await agent.next('welcome');
    return { agent, welcome };
  }

  send(message: AgentMessage | Record<string, unknown>): Promise<void> {
    return this.sendRaw(JSON.stringify(message));
  }

  sendMessage(message: AgentMessage): Promise<void> {
    return this.sendRaw(encodeMessage(message));
  }

  sendRaw(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#ws.send(data, { binary: typeof data !== 'string' }, (error) =>
        error === undefined || error === null ? resolve() : reject(error),
      );
    });
  }

  /** The next message of a type (optionally matching more), skipping none of the others. */
  next<T extends ServerMessage['type']>(
    type: T,
    match: (message: Extract<ServerMessage, { type: T }>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    return this.messages
      .take((message) => isType(message, type) && match(message), `a "${type}"`, timeoutMs)
      .then((message) => {
        if (!isType(message, type)) throw new Error('inbox returned the wrong type');
        return message;
      });
  }

  /** Resolves true if no message of that type (and match) arrives within `ms`. */
  async nothing<T extends ServerMessage['type']>(
    type: T,
    ms: number,
    match: (message: Extract<ServerMessage, { type: T }>) => boolean = () => true,
  ): Promise<boolean> {
    try {
      await this.next(type, match, ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Stops reading the socket: pings go unanswered, as with a dead peer. */
  pause(): void {
    this.#ws.pause();
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close(1000, 'test done');
    }
    return this.closed;
  }

  terminate(): void {
    this.#ws.terminate();
  }

  async #receive(data: Buffer, isBinary: boolean): Promise<void> {
    if (isBinary) {
      this.frames.push(data);
      const { transfer, chunk } = decodeBlobFrame(data);
      await this.#receiver.chunk(transfer, chunk);
      return;
    }
    const text = data.toString('utf8');
    let message: ServerMessage;
    try {
      message = decodeServerMessage(text);
    } catch {
      this.undecodable.push(text);
      return;
    }
    if (message.type === 'blob-begin' && this.#blobDir !== undefined) {
      this.#receiver.begin(message, join(this.#blobDir, message.sha256));
    } else if (message.type === 'blob-end' && this.#blobDir !== undefined) {
      try {
        this.blobs.push({
          transfer: message.transfer,
          blob: await this.#receiver.end(message.transfer),
        });
      } catch (error) {
        if (!(error instanceof CuttleError)) throw error;
        this.blobs.push({ transfer: message.transfer, error });
      }
    }
    this.messages.push(message);
  }
}

/** The server answered the upgrade with an HTTP error. */
export class HttpRefusal extends Error {
  constructor(readonly status: number) {
    super(`the server refused the upgrade with HTTP ${status}`);
  }
}

function isType<T extends ServerMessage['type']>(
  message: ServerMessage,
  type: T,
): message is Extract<ServerMessage, { type: T }> {
  return message.type === type;
}
