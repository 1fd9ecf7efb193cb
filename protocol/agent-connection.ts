/**
 * The agent's side of the transport (PROTOCOL.md sections 1, 2 and 8): dials the server, sends
 * `hello`, waits for `welcome`, keeps the connection alive and reconnects forever until stopped.
 * It validates every incoming frame and answers malformed ones itself; everything valid goes to
 * the agent as events. It holds no task state: what to re-send after a reconnect is the agent's.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { Backoff } from './backoff.js';
import { decodeBlobFrame, decodeServerMessage, encodeMessage, InvalidTaskError } from './codec.js';
import {
  asCuttleError,
  clipText,
  CuttleError,
  InvalidMessageError,
  MAX_REF_CHARS,
} from './errors.js';
import { Heartbeat } from './heartbeat.js';
import { writeMaskedBinaryFrame } from './masked-binary-frame.js';
import {
  DEFAULT_HEARTBEAT_MS,
  MAX_BINARY_FRAME_BYTES,
  MAX_TEXT_FRAME_BYTES,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  type AgentMessage,
  type Hello,
  type ServerMessage,
  type Welcome,
} from './messages.js';
import { rawDataToBuffer } from './raw-data.js';
import { parseServerUrl } from './server-url.js';
import { checkCertificatePin, parseCertificatePin } from './tls-pin.js';

/** From dialling until `welcome`; a server that accepts TCP but never welcomes is retried. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** How long stop() waits for the closing handshake before cutting the socket. */
const CLOSE_GRACE_MS = 2_000;
const CLOSE_REPLACED = 4009;
const CLOSE_PROTOCOL_UNSUPPORTED = 4001;
/** Close codes that say something went wrong, worth a 'problem' (the rest are routine). */
const NOTABLE_CLOSE_CODES = new Set([1002, 1003, 1007, 1008, 1009, 1010, 1011]);

/** The subset of a winston logger the connection uses. */
export interface ConnectionLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
}

export interface AgentConnectionOptions {
  /** ws:// or wss:// */
  url: string;
  token: string;
  /** PEM CA bundle to trust instead of the system CAs. */
  caFile?: string;
  /** Pinned SHA-256 of the server certificate (DER), hex, colons optional, any case. */
  certSha256?: string;
  /** Allow ws:// to a non-loopback host. */
  allowInsecure?: boolean;
  /** Called for every new connection; its result is the first message sent. */
  hello: () => Hello;
  logger?: ConnectionLogger;
  /** Reconnect delays; defaults 500 and 30000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** From dialling until `welcome`; default 30000. */
  connectTimeoutMs?: number;
}

export interface DisconnectInfo {
  code?: number;
  reason: string;
  error?: CuttleError;
}

/** Every server message except `welcome`, which has its own event. */
export type ServerMessageAfterWelcome = Exclude<ServerMessage, { type: 'welcome' }>;

export type AgentConnectionEvents = {
  /** A connection is ready: `connected` is already true, so listeners can send. */
  welcome: [welcome: Welcome];
  message: [message: ServerMessageAfterWelcome];
  'blob-frame': [transfer: number, chunk: Buffer];
  /** A welcomed connection ended (once per 'welcome'); reconnecting follows unless stopped. */
  disconnected: [info: DisconnectInfo];
  /** Something log-worthy; already logged through `logger`. Repeats of one failure are dropped. */
  problem: [error: CuttleError];
};

/** send/sendAsync/sendBinary on a connection that is not (or no longer) there. */
export class NotConnectedError extends CuttleError {
  constructor(message = 'not connected to the server', options?: { cause?: unknown }) {
    super('connection-refused', message, options);
  }
}

const silentLogger: ConnectionLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

/** One dial and, if it works, the connection that follows. */
interface Attempt {
  readonly socket: WebSocket;
  readonly heartbeat: Heartbeat;
  readonly connectTimer: NodeJS.Timeout;
  readonly closed: Promise<void>;
  readonly markClosed: () => void;
  /** The TCP or TLS socket under `socket`, from its upgrade: blob frames are written to it. */
  rawSocket: Duplex | undefined;
  opened: boolean;
  welcomed: boolean;
  /** The first known reason this attempt failed; the close that follows reports it. */
  failure: CuttleError | undefined;
}

export class AgentConnection extends EventEmitter<AgentConnectionEvents> {
  readonly #url: URL;
  readonly #token: string;
  readonly #ca: Buffer | undefined;
  readonly #pin: string | undefined;
  readonly #hello: () => Hello;
  readonly #logger: ConnectionLogger;
  readonly #backoff: Backoff;
  readonly #connectTimeoutMs: number;
  #started = false;
  #stopped = false;
  #attempt: Attempt | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** The last connection failure reported, so a retry loop logs it once, not every time. */
  #lastFailureKey: string | undefined;

  constructor(options: AgentConnectionOptions) {
    super();
    this.#url = parseServerUrl(options.url, options.allowInsecure === true);
    if (!/^[\x21-\x7e]+$/.test(options.token)) {
      throw new CuttleError(
        'config-invalid',
        'the agent token must be non-empty printable ASCII without spaces',
      );
    }
    this.#token = options.token;
    const secure = this.#url.protocol === 'wss:';
    if (!secure && (options.caFile !== undefined || options.certSha256 !== undefined)) {
      throw new CuttleError(
        'config-invalid',
        `caFile and certSha256 need a wss:// server URL (got ${this.#url.protocol}//)`,
      );
    }
    this.#ca = options.caFile === undefined ? undefined : readCaFile(options.caFile);
    this.#pin =
      options.certSha256 === undefined ? undefined : parseCertificatePin(options.certSha256);
    this.#hello = options.hello;
    this.#logger = options.logger ?? silentLogger;
    this.#backoff = new Backoff(options.backoff);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** True between `welcome` and the close of that connection. */
  get connected(): boolean {
    const attempt = this.#attempt;
    return attempt?.welcomed === true && attempt.socket.readyState === WebSocket.OPEN;
  }

  /** Begins dialling; reconnects forever until stop(). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#stopped = false;
    this.#dial();
  }

  /** Closes the connection (code 1000) and stops reconnecting. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#started = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const attempt = this.#attempt;
    if (attempt === undefined) return;
    const { socket } = attempt;
    if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'agent stopping');
    else if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
    // A server that never completes the closing handshake does not hold stop() up.
    const cut = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    await attempt.closed;
    clearTimeout(cut);
  }

  /** Queues a message on the socket; false when not connected (the caller keeps it for later). */
  send(message: AgentMessage): boolean {
    const socket = this.#connectedSocket();
    if (socket === undefined) return false;
    socket.send(encodeText(message));
    return true;
  }

  /** Resolves once the message is written to the socket. */
  async sendAsync(message: AgentMessage): Promise<void> {
    const socket = this.#connectedSocket();
    if (socket === undefined) throw new NotConnectedError();
    await writeFrame(socket, encodeText(message), false);
  }

  /**
   * Writes an already encoded message (one JSON object) as is. The agent re-sends journalled
   * events with it, so a re-sent event is byte-for-byte the first one (PROTOCOL.md section 2).
   * Resolves once written; the caller vouches that the text is a valid message.
   */
  /** A text frame: a string, or its UTF-8 bytes (already encoded, e.g. as journalled). */
  async sendText(text: string | Buffer): Promise<void> {
    checkTextSize(text, 'text');
    const socket = this.#connectedSocket();
    if (socket === undefined) throw new NotConnectedError();
    await writeFrame(socket, text, false);
  }

  /**
   * A blob frame (4-byte transfer number, then data), see encodeBlobFrame, masked IN PLACE
   * (masked-binary-frame.ts): once called, the buffer no longer holds the frame, and it must stay
   * untouched until this settles. A caller that needs the bytes again must send a copy.
   */
  async sendBinaryInPlace(frame: Buffer): Promise<void> {
    if (frame.byteLength > MAX_BINARY_FRAME_BYTES) {
      throw new CuttleError(
        'internal',
        `binary frame of ${frame.byteLength} bytes exceeds ${MAX_BINARY_FRAME_BYTES}`,
      );
    }
    const socket = this.#connectedSocket();
    const rawSocket = this.#attempt?.rawSocket;
    if (socket === undefined || rawSocket === undefined) throw new NotConnectedError();
    // ws's bufferedAmount is the socket's unsent bytes plus any frames ws holds back. Should a
    // later ws hold some back, a frame written under it would overtake them: let ws send it.
    if (socket.bufferedAmount !== rawSocket.writableLength) {
      await writeFrame(socket, frame, true);
      return;
    }
    // Synchronous throws (a bug here, not the connection) are not caught below.
    const written = writeMaskedBinaryFrame(rawSocket, frame);
    try {
      await written;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new NotConnectedError(`connection lost while sending: ${reason}`, { cause: error });
    }
  }

  /**
   * Stops reading from the server until resumeReading(): a consumer slower than the network (blob
   * frames going to disk) holds the server back through TCP instead of buffering. Only the
   * current connection is paused; the next one reads. A pause longer than twice the heartbeat
   * period looks like a dead server, and ends the connection.
   */
  pauseReading(): void {
    this.#attempt?.socket.pause();
  }

  /** Reads again after pauseReading(). */
  resumeReading(): void {
    this.#attempt?.socket.resume();
  }

  #connectedSocket(): WebSocket | undefined {
    return this.connected ? this.#attempt?.socket : undefined;
  }

  #dial(): void {
    this.#logger.debug(`connecting to ${this.#url.href}`);
    const secure = this.#url.protocol === 'wss:';
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.#url, SUBPROTOCOL, {
        maxPayload: MAX_BINARY_FRAME_BYTES,
        perMessageDeflate: false,
        followRedirects: false,
        ca: this.#ca,
        // A pin replaces CA validation (self-signed servers); it is checked in #finishRequest.
        rejectUnauthorized: this.#pin === undefined || this.#ca !== undefined,
        finishRequest: (request) => this.#finishRequest(request, secure),
      });
    } catch (error) {
      this.#reportFailure(asCuttleError(error, 'internal'));
      this.#scheduleRetry(false);
      return;
    }
    let markClosed = (): void => undefined;
    const closed = new Promise<void>((resolve) => {
      markClosed = resolve;
    });
    const attempt: Attempt = {
      socket,
      closed,
      markClosed: () => markClosed(),
      rawSocket: undefined,
      opened: false,
      welcomed: false,
      failure: undefined,
      heartbeat: new Heartbeat({
        ping: () => socket.ping(),
        dead: (silentMs) =>
          this.#abandon(
            attempt,
            new CuttleError(
              'connection-refused',
              `the server was silent for ${silentMs} ms: reconnecting`,
            ),
          ),
      }),
      connectTimer: setTimeout(
        () =>
          this.#abandon(
            attempt,
            new CuttleError(
              'connection-refused',
              `no welcome from ${this.#url.host} within ${this.#connectTimeoutMs} ms`,
            ),
          ),
        this.#connectTimeoutMs,
      ),
    };
    this.#attempt = attempt;

    socket.on('unexpected-response', (_request: ClientRequest, response: IncomingMessage) => {
      response.resume();
      attempt.failure ??=
        response.statusCode === 401
          ? new CuttleError('unauthorized', 'server rejected the agent token')
          : new CuttleError(
              'connection-refused',
              `${this.#url.host} answered HTTP ${response.statusCode ?? '?'} instead of ` +
                'upgrading to a WebSocket',
            );
      socket.terminate();
    });
    socket.on('upgrade', (response: IncomingMessage) => {
      attempt.rawSocket = response.socket;
    });
    socket.on('open', () => this.#onOpen(attempt));
    socket.on('message', (data, isBinary) => {
      // A throw out of a ws listener is uncaught and ends the agent: whatever goes wrong with one
      // frame (here or in a listener of ours) costs that frame only.
      try {
        attempt.heartbeat.alive();
        const bytes = rawDataToBuffer(data);
        if (isBinary) this.#onBinary(attempt, bytes);
        else this.#onText(attempt, bytes);
      } catch (error) {
        this.#onHandlingFailure(error);
      }
    });
    socket.on('ping', () => attempt.heartbeat.alive());
    socket.on('pong', () => attempt.heartbeat.alive());
    socket.on('error', (error) => {
      attempt.failure ??=
        error instanceof CuttleError
          ? error
          : new CuttleError(
              'connection-refused',
              attempt.opened
                ? `the connection to ${this.#url.host} failed: ${error.message}`
                : `cannot connect to ${this.#url.host}: ${error.message}`,
              { cause: error },
            );
    });
    socket.on('close', (code, reason) => this.#onClose(attempt, code, reason.toString('utf8')));
  }

  /**
   * ws calls this instead of sending the upgrade request itself. Over TLS the request, and so the
   * token in it, is sent only after the handshake succeeded and the pin matched: Node skips
   * `checkServerIdentity` when CA validation is off, so a pin cannot be enforced there.
   */
  #finishRequest(request: ClientRequest, secure: boolean): void {
    const send = (): void => {
      request.setHeader('Authorization', `Bearer ${this.#token}`);
      request.end();
    };
    if (!secure) {
      send();
      return;
    }
    // 'socket' fires on a later tick than the dial, before any I/O, so the handshake is not done.
    request.once('socket', (socket) => {
      if (!(socket instanceof TLSSocket)) {
        request.destroy(new CuttleError('internal', 'wss:// connection without a TLS socket'));
        return;
      }
      socket.once('secureConnect', () => {
        const mismatch =
          this.#pin === undefined
            ? undefined
            : checkCertificatePin(this.#pin, socket.getPeerCertificate(true).raw);
        if (mismatch !== undefined) request.destroy(mismatch);
        else send();
      });
    });
  }

  #onOpen(attempt: Attempt): void {
    attempt.opened = true;
    // Open: from now on silence means a dead peer. The server's period replaces this at welcome.
    attempt.heartbeat.start(DEFAULT_HEARTBEAT_MS);
    let hello: Hello;
    try {
      hello = this.#hello();
    } catch (error) {
      this.#abandon(attempt, asCuttleError(error, 'internal'));
      return;
    }
    this.#reply(attempt, hello);
  }

  #onText(attempt: Attempt, bytes: Buffer): void {
    if (bytes.byteLength > MAX_TEXT_FRAME_BYTES) {
      this.#answerInvalid(
        attempt,
        new InvalidMessageError(
          'invalid-message',
          `text frame of ${bytes.byteLength} bytes exceeds ${MAX_TEXT_FRAME_BYTES}`,
        ),
      );
      return;
    }
    let message: ServerMessage;
    try {
      message = decodeServerMessage(bytes.toString('utf8'));
    } catch (error) {
      this.#answerInvalid(attempt, error);
      return;
    }
    if (message.type === 'welcome') {
      this.#onWelcome(attempt, message);
      return;
    }
    if (!attempt.welcomed) {
      if (message.type === 'error') {
        // The server refusing our hello, say; answering an error with an error could loop.
        this.#reportProblem(
          new CuttleError(
            'connection-refused',
            `the server answered ${message.code} before welcome: ${message.message}`,
          ),
        );
        return;
      }
      this.#answerInvalid(
        attempt,
        new InvalidMessageError(
          'invalid-message',
          `"${message.type}" received before "welcome"`,
          'taskId' in message ? message.taskId : undefined,
        ),
      );
      return;
    }
    this.emit('message', message);
  }

  #onWelcome(attempt: Attempt, welcome: Welcome): void {
    if (attempt.welcomed) {
      this.#answerInvalid(attempt, new InvalidMessageError('invalid-message', 'second "welcome"'));
      return;
    }
    attempt.welcomed = true;
    clearTimeout(attempt.connectTimer);
    attempt.heartbeat.start(welcome.heartbeatMs);
    this.#backoff.reset();
    this.#lastFailureKey = undefined;
    this.#logger.info(`connected to ${this.#url.host}`, {
      sessionId: welcome.sessionId,
      heartbeatMs: welcome.heartbeatMs,
    });
    this.emit('welcome', welcome);
  }

  #onBinary(attempt: Attempt, bytes: Buffer): void {
    if (!attempt.welcomed) {
      this.#answerInvalid(
        attempt,
        new InvalidMessageError('invalid-message', 'binary frame received before "welcome"'),
      );
      return;
    }
    let frame: { transfer: number; chunk: Buffer };
    try {
      frame = decodeBlobFrame(bytes);
    } catch (error) {
      this.#answerInvalid(attempt, error);
      return;
    }
    this.emit('blob-frame', frame.transfer, frame.chunk);
  }

  /**
   * Answers a frame that failed validation, keeping the connection (PROTOCOL.md section 1). The
   * text is clipped so that the answer fits in a text frame, whatever the frame was.
   */
  #answerInvalid(attempt: Attempt, error: unknown): void {
    if (error instanceof InvalidTaskError) {
      this.#reply(attempt, {
        type: 'rejected',
        taskId: error.taskId,
        code: 'invalid-task',
        message: clipText(error.message),
      });
    } else if (error instanceof InvalidMessageError) {
      this.#reply(attempt, {
        type: 'error',
        code: error.code,
        message: clipText(error.message),
        ...(error.ref === undefined ? {} : { ref: clipText(error.ref, MAX_REF_CHARS) }),
      });
    } else {
      // Not a validation failure: a bug here, not the server's fault. Report it, answer nothing.
      this.#reportProblem(asCuttleError(error, 'internal'));
      return;
    }
    this.#logger.warn(`invalid message from the server: ${error.message}`, { code: error.code });
    this.emit('problem', error);
  }

  /** A throw while handling one frame: a bug, not the server's fault. Reported, not answered. */
  #onHandlingFailure(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    const failure = new CuttleError(
      'internal',
      `a frame from the server could not be handled: ${clipText(reason)}`,
      { cause: error },
    );
    try {
      this.#reportProblem(failure);
    } catch {
      // A 'problem' listener failed too; #reportProblem logged the failure before calling it.
    }
  }

  /** Sends on a socket that may not be welcomed yet (hello, answers to invalid frames). */
  #reply(attempt: Attempt, message: AgentMessage): void {
    if (attempt.socket.readyState !== WebSocket.OPEN) return;
    attempt.socket.send(encodeText(message));
  }

  /** Gives up on a connection (timeout, dead peer, hello failure); the close reports `failure`. */
  #abandon(attempt: Attempt, failure: CuttleError): void {
    attempt.failure ??= failure;
    attempt.socket.terminate();
  }

  #onClose(attempt: Attempt, code: number, reason: string): void {
    attempt.heartbeat.stop();
    clearTimeout(attempt.connectTimer);
    // Not current after stop() and a quick start(): that newer attempt owns the retry loop.
    const current = this.#attempt === attempt;
    if (current) this.#attempt = undefined;

    let failure = attempt.failure;
    let slowRetry = failure?.code === 'unauthorized';
    if (code === CLOSE_REPLACED) {
      failure = new CuttleError(
        'replaced',
        'another agent uses this agent id: was its home folder copied?',
      );
      slowRetry = true;
    } else if (code === CLOSE_PROTOCOL_UNSUPPORTED) {
      failure = new CuttleError(
        'connection-refused',
        `the server does not speak protocol ${PROTOCOL_VERSION}: ${reason || 'no reason given'}`,
      );
      slowRetry = true;
    } else if (failure === undefined && (code >= 4000 || NOTABLE_CLOSE_CODES.has(code))) {
      failure = new CuttleError(
        'connection-refused',
        `the server closed the connection with code ${code}${reason ? `: ${reason}` : ''}`,
      );
    }
    if (failure !== undefined && current && !this.#stopped) this.#reportFailure(failure);

    if (attempt.welcomed) {
      const info: DisconnectInfo = {
        code,
        reason: reason || failure?.message || `connection closed (code ${code})`,
        ...(failure === undefined ? {} : { error: failure }),
      };
      this.#logger.info(`disconnected from ${this.#url.host}: ${info.reason}`, { code });
      this.emit('disconnected', info);
    }
    attempt.markClosed();
    if (current && !this.#stopped) this.#scheduleRetry(slowRetry);
  }

  #scheduleRetry(slow: boolean): void {
    // 401, 4009 and 4001 will not fix themselves in a second: retry at the slowest pace.
    const delayMs = slow ? this.#backoff.maxMs : this.#backoff.next();
    this.#logger.debug(`reconnecting in ${delayMs} ms`);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#stopped) this.#dial();
    }, delayMs);
  }

  /** Connection failures repeat on every retry: report each distinct one once until a welcome. */
  #reportFailure(failure: CuttleError): void {
    const key = `${failure.code}\n${failure.message}`;
    if (key === this.#lastFailureKey) {
      this.#logger.debug(`still failing: ${failure.message}`, { code: failure.code });
      return;
    }
    this.#lastFailureKey = key;
    this.#reportProblem(failure);
  }

  #reportProblem(problem: CuttleError): void {
    const serious = ['unauthorized', 'replaced', 'certificate-mismatch', 'internal'];
    const meta = { code: problem.code };
    if (serious.includes(problem.code)) this.#logger.error(problem.message, meta);
    else this.#logger.warn(problem.message, meta);
    this.emit('problem', problem);
  }
}

function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CuttleError('config-invalid', `cannot read caFile ${path}: ${String(error)}`, {
      cause: error,
    });
  }
}

function encodeText(message: AgentMessage): string {
  const text = encodeMessage(message);
  checkTextSize(text, `"${message.type}"`);
  return text;
}

function checkTextSize(text: string | Buffer, what: string): void {
  const size = typeof text === 'string' ? Buffer.byteLength(text, 'utf8') : text.length;
  if (size > MAX_TEXT_FRAME_BYTES) {
    // A caller bug (an oversized log batch, say): retrying it later would fail the same way.
    throw new CuttleError(
      'internal',
      `${what} message of ${size} bytes exceeds the ${MAX_TEXT_FRAME_BYTES}-byte frame limit`,
    );
  }
}

function writeFrame(socket: WebSocket, data: string | Buffer, binary: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.send(data, { binary }, (error) => {
      if (error === undefined || error === null) resolve();
      else
        reject(
          new NotConnectedError(`connection lost while sending: ${error.message}`, {
            cause: error,
          }),
        );
    });
  });
}
