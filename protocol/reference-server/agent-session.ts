/**
 * One agent connection as the reference server sees it: framing, validation and `error` replies,
 * the hello gate, keepalive, and incoming blob transfers. What the messages mean is left to the
 * `SessionHost` (the server).
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { BlobReceiver, type ReceivedBlob } from '../blob-stream.js';
import { decodeAgentMessage, decodeBlobFrame, encodeMessage } from '../codec.js';
import { rawDataToBuffer } from '../raw-data.js';
import {
  asCuttleError,
  clipText,
  CuttleError,
  InvalidMessageError,
  isErrorCode,
  MAX_REF_CHARS,
  type ErrorCode,
} from '../errors.js';
import {
  MAX_TEXT_FRAME_BYTES,
  PROTOCOL_VERSION,
  type AgentMessage,
  type BlobBegin,
  type Hello,
  type ServerMessage,
} from '../messages.js';

/** Close codes of section 2, and the one used when the first message is not a usable hello. */
export const CLOSE_UNSUPPORTED_PROTOCOL = 4001;
export const CLOSE_REPLACED = 4009;
export const CLOSE_POLICY = 1008;
export const CLOSE_GOING_AWAY = 1001;

/** Past this many messages waiting to be handled, stop reading the socket until it goes down. */
const PAUSE_AT_PENDING = 64;
const RESUME_AT_PENDING = 8;

export interface SessionHost {
  onHello(session: AgentSession, hello: Hello): Promise<void>;
  /** Every message after `hello`, blob framing excepted. */
  /** `frame`: the text frame's bytes as received, which the store can keep as they are. */
  onMessage(session: AgentSession, message: AgentMessage, frame: Buffer): Promise<void>;
  /** Every decoded message, for observers. */
  onAnyMessage(session: AgentSession, message: AgentMessage): void;
  blobDestination(begin: BlobBegin): string;
  onBlobReceived(session: AgentSession, blob: ReceivedBlob): void;
  onClose(session: AgentSession, code: number, reason: string): void;
  onFailure(error: CuttleError): void;
  /** Every message received so far is handled (the time to send acknowledgements). */
  onInboxEmpty(session: AgentSession): void;
}

export class AgentSession {
  readonly sessionId = `s-${randomBytes(6).toString('hex')}`;
  readonly receiver = new BlobReceiver();
  hello: Hello | undefined;
  /** Resolves when the socket has closed, however it closed. */
  readonly closed: Promise<void>;
  readonly #ws: WebSocket;
  readonly #host: SessionHost;
  readonly #heartbeatMs: number;
  readonly #connectedAt = Date.now();
  #lastSeen = Date.now();
  #nextTransfer = 1;
  #queue: Promise<void> = Promise.resolve();
  #pending = 0;
  #paused = false;
  readonly #timer: NodeJS.Timeout;

  constructor(ws: WebSocket, host: SessionHost, heartbeatMs: number) {
    this.#ws = ws;
    this.#host = host;
    this.#heartbeatMs = heartbeatMs;
    ws.on('message', (data, isBinary) => this.#enqueue(rawDataToBuffer(data), isBinary));
    ws.on('pong', () => this.#seen());
    ws.on('ping', () => this.#seen());
    // A protocol error by the peer (an oversized frame, say) closes the socket with a code that
    // onClose reports; it is not a failure of the server.
    ws.on('error', () => undefined);
    let markClosed: () => void = () => undefined;
    this.closed = new Promise((resolve) => (markClosed = resolve));
    ws.on('close', (code, reason) => {
      clearInterval(this.#timer);
      markClosed();
      this.receiver.abortAll().catch((error: unknown) => host.onFailure(asCuttleError(error)));
      host.onClose(this, code, reason.toString('utf8'));
    });
    this.#timer = setInterval(() => this.#heartbeat(), heartbeatMs);
  }

  get agentId(): string | undefined {
    return this.hello?.agent.id;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** Transfer numbers of blobs this server sends on this connection. */
  nextTransfer(): number {
    return this.#nextTransfer++;
  }

  send(message: ServerMessage): Promise<void> {
    return this.sendRaw(encodeMessage(message));
  }

  /** Sends and forgets: if the socket is gone, its close handler already dealt with it. */
  post(message: ServerMessage): void {
    this.send(message).catch(() => undefined);
  }

  sendRaw(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#ws.readyState !== WebSocket.OPEN) {
        reject(new CuttleError('connection-refused', 'the agent connection is closed'));
        return;
      }
      this.#ws.send(data, { binary: typeof data !== 'string' }, (error) => {
        if (error === undefined || error === null) resolve();
        else
          reject(
            new CuttleError('connection-refused', 'sending to the agent failed', { cause: error }),
          );
      });
    });
  }

  sendBinary(frame: Buffer): Promise<void> {
    return this.sendRaw(frame);
  }

  /**
   * Answers `error`; a code that is not a wire code (a local failure) goes out as `internal`. The
   * text is clipped: an agent closes the connection (1009) on a frame over its limit.
   */
  sendError(
    code: CuttleError['code'],
    message: string,
    about: { ref?: string; transfer?: number } = {},
  ): void {
    const wireCode: ErrorCode = isErrorCode(code) ? code : 'internal';
    const { ref, transfer } = about;
    this.post({
      type: 'error',
      code: wireCode,
      message: clipText(message),
      ...(ref === undefined ? {} : { ref: clipText(ref, MAX_REF_CHARS) }),
      ...(transfer === undefined ? {} : { transfer }),
    });
  }

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }

  #seen(): void {
    this.#lastSeen = Date.now();
  }

  #heartbeat(): void {
    const now = Date.now();
    // While paused we stop reading, pongs included: our own slowness is not a dead peer.
    if (!this.#paused && now - this.#lastSeen > 2 * this.#heartbeatMs) {
      this.terminate();
      return;
    }
    if (this.hello === undefined && now - this.#connectedAt > 2 * this.#heartbeatMs) {
      this.close(CLOSE_POLICY, 'no hello received');
      return;
    }
    this.#ws.ping();
  }

  /**
   * Messages are handled one at a time, in order: an event is stored before the next is looked
   * at, and an artifact's blob is in place before its `artifact` event is checked.
   */
  #enqueue(data: Buffer, isBinary: boolean): void {
    this.#seen();
    this.#pending++;
    if (this.#pending >= PAUSE_AT_PENDING && !this.#paused) {
      this.#paused = true;
      this.#ws.pause();
    }
    this.#queue = this.#queue
      .then(() => this.#handle(data, isBinary))
      .catch((error: unknown) => {
        const failure = asCuttleError(error);
        this.#host.onFailure(failure);
        this.sendError('internal', failure.message);
      })
      .finally(() => {
        this.#pending--;
        if (this.#paused && this.#pending <= RESUME_AT_PENDING) {
          this.#paused = false;
          this.#ws.resume();
        }
        if (this.#pending === 0) this.#host.onInboxEmpty(this);
      });
  }

  async #handle(data: Buffer, isBinary: boolean): Promise<void> {
    if (this.hello === undefined) {
      await this.#handleFirst(data, isBinary);
      return;
    }
    if (isBinary) {
      await this.#handleBlobFrame(data);
      return;
    }
    const text = data.toString('utf8');
    const message = this.#decode(data, text);
    if (message === undefined) return;
    this.#host.onAnyMessage(this, message);
    switch (message.type) {
      case 'hello':
        this.sendError('invalid-message', 'hello was already received on this connection');
        return;
      case 'blob-begin':
        this.#beginBlob(message);
        return;
      case 'blob-end':
        await this.#endBlob(message.transfer);
        return;
      default:
        await this.#host.onMessage(this, message, data);
    }
  }

  async #handleFirst(data: Buffer, isBinary: boolean): Promise<void> {
    const text = isBinary ? undefined : data.toString('utf8');
    // The version is checked before validation: a hello of another version may not fit v1's schema.
    const protocol = text === undefined ? undefined : peekHelloProtocol(text);
    if (protocol !== undefined && protocol !== PROTOCOL_VERSION) {
      this.close(
        CLOSE_UNSUPPORTED_PROTOCOL,
        `protocol ${protocol} is not supported; this server speaks ${PROTOCOL_VERSION}`,
      );
      return;
    }
    const message = text === undefined ? undefined : this.#decode(data, text);
    if (message !== undefined) this.#host.onAnyMessage(this, message);
    if (message?.type !== 'hello') {
      // #decode already answered a frame that does not decode.
      if (message !== undefined || isBinary) {
        this.sendError('invalid-message', 'the first message must be hello');
      }
      this.close(CLOSE_POLICY, 'the first message must be hello');
      return;
    }
    this.hello = message;
    await this.#host.onHello(this, message);
  }

  /** Decodes a text frame, answering `error` for one that does not decode. */
  #decode(data: Buffer, text: string): AgentMessage | undefined {
    if (data.byteLength > MAX_TEXT_FRAME_BYTES) {
      this.sendError('invalid-message', `text frame of ${data.byteLength} bytes exceeds 1 MiB`);
      return undefined;
    }
    try {
      return decodeAgentMessage(text);
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      this.sendError(error.code, error.message, error.ref === undefined ? {} : { ref: error.ref });
      return undefined;
    }
  }

  #beginBlob(begin: BlobBegin): void {
    try {
      this.receiver.begin(begin, this.#host.blobDestination(begin));
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      this.sendError(error.code, error.message, { transfer: begin.transfer });
    }
  }

  async #handleBlobFrame(frame: Buffer): Promise<void> {
    let transfer: number | undefined;
    try {
      const decoded = decodeBlobFrame(frame);
      transfer = decoded.transfer;
      await this.receiver.chunk(decoded.transfer, decoded.chunk);
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      this.sendError(error.code, error.message, transfer === undefined ? {} : { transfer });
    }
  }

  async #endBlob(transfer: number): Promise<void> {
    try {
      this.#host.onBlobReceived(this, await this.receiver.end(transfer));
    } catch (error) {
      if (!(error instanceof CuttleError)) throw error;
      // blob-corrupt, an unknown transfer, or a disk failure: the sender learns which transfer.
      this.sendError(error.code, error.message, { transfer });
    }
  }
}

/** The `protocol` of a frame that looks like a hello, without validating the rest. */
function peekHelloProtocol(text: string): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (!('type' in value) || value.type !== 'hello') return undefined;
  if (!('protocol' in value) || typeof value.protocol !== 'number') return undefined;
  return value.protocol;
}
