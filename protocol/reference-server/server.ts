/**
 * The reference server: the server side of protocol v1, written to be read by server authors as
 * well as used by the tests, `cuttle try` and `cuttle server`. It accepts agents on a WebSocket,
 * pushes them tasks, stores their events under a data folder and acknowledges them.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { copyFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import { hashFile, sendBlob, type ReceivedBlob } from '../blob-stream.js';
import { parseTask } from '../codec.js';
import { asCuttleError, CuttleError } from '../errors.js';
import {
  DEFAULT_HEARTBEAT_MS,
  MAX_BINARY_FRAME_BYTES,
  MAX_UNACKED_BYTES,
  SUBPROTOCOL,
  type AgentMessage,
  type BlobBegin,
  type ErrorMessage,
  type Hello,
  type TaskEvent,
  type TaskInput,
} from '../messages.js';
import {
  AgentSession,
  CLOSE_GOING_AWAY,
  CLOSE_REPLACED,
  type SessionHost,
} from './agent-session.js';
import { isAuthorized } from './auth.js';
import { createHttpApiHandler } from './http-api.js';
import { TaskStore } from './store.js';
import { TaskRecord, type TaskHandle, type TaskSummary } from './task-record.js';

export interface ReferenceServerOptions {
  /** The token agents (and HTTP API clients) must present as `Authorization: Bearer <token>`. */
  token: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  tls?: { key: string | Buffer; cert: string | Buffer };
  dataDir: string;
  heartbeatMs?: number;
  /** Acknowledge stored events (default; see ACK_EVERY_EVENTS). Tests turn it off to hold acks. */
  autoAck?: boolean;
  /** How long acks wait for more events once everything received is handled (default 10 ms). */
  ackDelayMs?: number;
  /** Serve the HTTP API (see http-api.ts) on the same port. */
  httpApi?: boolean;
  /**
   * When every agent is at its capacity, push a task anyway to the least loaded one, which queues
   * it (section 3). By default the server keeps it until a slot frees.
   */
  pushWhenFull?: boolean;
}

/** How long close() waits for agents to answer the close handshake. */
const CLOSE_GRACE_MS = 1000;

/** Defaults in one place. */
const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  autoAck: true,
  ackDelayMs: 10,
  httpApi: false,
  pushWhenFull: false,
};
/**
 * Acks are cumulative, so one covers every event stored before it: sent `ackDelayMs` after the
 * agent's messages so far are all handled, at once for a `result` (the agent forgets the task on
 * its ack), or after this many events, or bytes of them, of one task while they keep coming (well
 * inside the agent's window of 512 events or 8 MiB, so it never waits out the delay with its
 * window full). One ack per event was a message each way per log batch, a measurable share of
 * both sides' CPU on busy logs.
 */
const ACK_EVERY_EVENTS = 32;
const ACK_EVERY_BYTES = MAX_UNACKED_BYTES / 4;

export type SubmitInput = Omit<TaskInput, 'type'> & { type?: 'task' };

export interface AgentInfo {
  agentId: string;
  name: string;
  version: string;
  capacity: number;
  capabilities: Hello['capabilities'];
  sessionId: string;
  /** Tasks pushed to it that have not ended. */
  activeTasks: number;
  draining: boolean;
}

export interface AgentDisconnectInfo {
  agentId: string | undefined;
  code: number;
  reason: string;
}

type ServerEvents = {
  connection: [{ remoteAddress: string | undefined }];
  hello: [Hello];
  disconnect: [AgentDisconnectInfo];
  'agent-message': [AgentMessage];
  'agent-error': [ErrorMessage];
  'blob-received': [ReceivedBlob];
  /** Something went wrong on the server's side (a disk write, a send): for logs and tests. */
  'server-error': [CuttleError];
};

/** A task id that the server does not know. */
export class UnknownTaskError extends CuttleError {
  constructor(taskId: string) {
    super('invalid-message', `unknown task ${taskId}`);
  }
}

export class ReferenceServer extends EventEmitter<ServerEvents> {
  readonly #token: string;
  readonly #host: string;
  readonly #port: number;
  readonly #tls: ReferenceServerOptions['tls'];
  readonly #heartbeatMs: number;
  readonly #httpApi: boolean;
  readonly #pushWhenFull: boolean;
  #autoAck: boolean;
  /**
   * A server that keeps up with busy logs has handled everything after nearly every event, so
   * acking at once then was still one ack per event (~3,000 per 200 MB); waiting a few milliseconds
   * gathers the events that follow into the same ack (~120).
   */
  readonly #ackDelayMs: number;
  readonly #store: TaskStore;
  readonly #sessions = new Set<AgentSession>();
  /** The current connection of each agent that said hello. */
  readonly #agents = new Map<string, AgentSession>();
  readonly #draining = new Set<string>();
  readonly #drainWaiters: { remaining: Set<string>; resolve: () => void }[] = [];
  readonly #tasks = new Map<string, TaskRecord>();
  /** Tasks with events stored (or received again) and not acknowledged yet, per connection. */
  readonly #acksDue = new Map<AgentSession, Set<TaskRecord>>();
  /** A session's acks waiting out `ackDelayMs`. */
  readonly #ackTimers = new Map<AgentSession, NodeJS.Timeout>();
  /** Ids of `pending` tasks, oldest first. */
  readonly #queue: string[] = [];
  readonly #wss: WebSocketServer;
  #server: Server | undefined;

  constructor(options: ReferenceServerOptions) {
    super();
    this.#token = options.token;
    this.#host = options.host ?? DEFAULTS.host;
    this.#port = options.port ?? DEFAULTS.port;
    this.#tls = options.tls;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    // The range welcome allows (messages.ts).
    if (
      !Number.isInteger(this.#heartbeatMs) ||
      this.#heartbeatMs < 100 ||
      this.#heartbeatMs > 600_000
    ) {
      throw new CuttleError('config-invalid', 'heartbeatMs must be an integer from 100 to 600000');
    }
    this.#autoAck = options.autoAck ?? DEFAULTS.autoAck;
    this.#ackDelayMs = options.ackDelayMs ?? DEFAULTS.ackDelayMs;
    if (!Number.isInteger(this.#ackDelayMs) || this.#ackDelayMs < 0 || this.#ackDelayMs > 60_000) {
      throw new CuttleError('config-invalid', 'ackDelayMs must be an integer from 0 to 60000');
    }
    this.#httpApi = options.httpApi ?? DEFAULTS.httpApi;
    this.#pushWhenFull = options.pushWhenFull ?? DEFAULTS.pushWhenFull;
    this.#store = new TaskStore(options.dataDir);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_BINARY_FRAME_BYTES,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  /** Loads the tasks already under dataDir (a restarted server resumes them) and listens. */
  async listen(): Promise<void> {
    if (this.#server !== undefined) throw new CuttleError('internal', 'already listening');
    await this.#store.init();
    for (const { persisted, events, eventsBytes } of await this.#store.loadTasks()) {
      const record = new TaskRecord(
        persisted,
        { path: this.#store.eventsPath(persisted.task.taskId), bytes: eventsBytes },
        events,
      );
      this.#tasks.set(record.taskId, record);
      if (record.status === 'pending') this.#queue.push(record.taskId);
    }
    const api = createHttpApiHandler(this.#httpApi ? this : undefined, this.#token);
    const server =
      this.#tls === undefined ? createHttpServer(api) : createHttpsServer({ ...this.#tls }, api);
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(request, socket, head),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.#host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  get url(): string {
    const address = this.#address();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.#tls === undefined ? 'ws' : 'wss'}://${host}:${address.port}`;
  }

  /** The same origin over HTTP(S), for the HTTP API. */
  get httpUrl(): string {
    return this.url.replace(/^ws/, 'http');
  }

  get dataDir(): string {
    return this.#store.dataDir;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    // Close politely so agents see 1001, but do not wait on a peer that does not answer.
    const sessions = [...this.#sessions];
    for (const session of sessions) session.close(CLOSE_GOING_AWAY, 'server shutting down');
    await Promise.race([
      Promise.all(sessions.map((session) => session.closed)),
      delay(CLOSE_GRACE_MS),
    ]);
    for (const session of sessions) session.terminate();
    await Promise.all([...this.#tasks.values()].map((task) => task.serialize(async () => {})));
    await this.#store.closeFiles();
    this.#wss.close();
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Followers of the HTTP API hold their responses open; end them too.
      server.closeAllConnections();
    });
  }

  // ---- Tasks ---------------------------------------------------------------------------------

  /** Queues a task and pushes it as soon as an agent has room. Throws `invalid-task`. */
  submit(input: SubmitInput): TaskHandle {
    const task = parseTask({ ...input, type: 'task' });
    if (this.#tasks.has(task.taskId)) {
      throw new CuttleError('invalid-task', `task ${task.taskId} was already submitted`);
    }
    const record = new TaskRecord(
      {
        task,
        status: 'pending',
        submittedAt: new Date().toISOString(),
        cancelRequested: false,
      },
      { path: this.#store.eventsPath(task.taskId), bytes: 0 },
    );
    this.#tasks.set(task.taskId, record);
    this.#queue.push(task.taskId);
    this.#persist(record);
    this.#pump();
    return record;
  }

  task(taskId: string): TaskHandle | undefined {
    return this.#tasks.get(taskId);
  }

  tasks(): TaskHandle[] {
    return [...this.#tasks.values()];
  }

  summaries(): TaskSummary[] {
    return this.tasks().map((task) => task.summary());
  }

  /**
   * Cancels a task. One that was never pushed is dropped from the queue (status `cancelled`, no
   * result will come); otherwise the agent is told now, or after its next hello if it is away.
   */
  cancel(taskId: string): void {
    const record = this.#record(taskId);
    if (record.status === 'pending') {
      this.#unqueue(taskId);
      record.setStatus('cancelled');
      this.#persist(record);
      return;
    }
    if (!record.isActive || record.cancelRequested) return;
    record.cancelRequested = true;
    this.#persist(record);
    this.#sessionOf(record)?.post({ type: 'cancel', taskId });
  }

  /** Acknowledges a task's events up to `seq` (with autoAck off). `seq` must be stored. */
  ack(taskId: string, seq: number): void {
    const record = this.#record(taskId);
    if (seq > record.lastSeq) {
      throw new CuttleError(
        'invalid-message',
        `cannot acknowledge ${taskId} up to ${seq}: only ${record.lastSeq} events are stored`,
      );
    }
    record.acked = Math.max(record.acked, seq);
    record.bytesSinceAck = 0;
    this.#sessionOf(record)?.post({ type: 'ack', taskId, seq });
  }

  /**
   * Turning autoAck on acknowledges at once everything stored and not yet acknowledged; turning it
   * off also drops the acks that were waiting out `ackDelayMs`.
   */
  setAutoAck(autoAck: boolean): void {
    this.#autoAck = autoAck;
    if (!autoAck) {
      for (const timer of this.#ackTimers.values()) clearTimeout(timer);
      this.#ackTimers.clear();
      this.#acksDue.clear();
      return;
    }
    for (const record of this.#tasks.values()) {
      if (record.lastSeq > record.acked && this.#sessionOf(record) !== undefined) {
        this.ack(record.taskId, record.lastSeq);
      }
    }
  }

  /**
   * Registers content the server can send on `blob-request` (packages, tool bundles). The copy is
   * hashed after it is made, so what is announced is what was stored.
   */
  async addBlob(source: string | Buffer): Promise<{ sha256: string; size: number }> {
    await this.#store.init();
    const temp = this.#store.blobPath(`incoming-${randomBytes(6).toString('hex')}`);
    try {
      if (typeof source === 'string') await copyFile(source, temp);
      else await writeFile(temp, source);
      const { sha256, size } = await hashFile(temp);
      await rename(temp, this.#store.blobPath(sha256));
      return { sha256, size };
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw asCuttleError(error);
    }
  }

  /** Where an artifact received from an agent is stored. */
  artifactPath(sha256: string): string {
    return this.#store.artifactPath(sha256);
  }

  // ---- Agents --------------------------------------------------------------------------------

  connectedAgents(): AgentInfo[] {
    return [...this.#agents.values()].flatMap((session) => {
      const hello = session.hello;
      if (hello === undefined) return [];
      return [
        {
          agentId: hello.agent.id,
          name: hello.agent.name,
          version: hello.agent.version,
          capacity: hello.capacity,
          capabilities: hello.capabilities,
          sessionId: session.sessionId,
          activeTasks: this.#activeCount(hello.agent.id),
          draining: this.#draining.has(hello.agent.id),
        },
      ];
    });
  }

  /**
   * Sends `drain` to every connected agent (or one) and resolves once each has answered
   * `drained`. A drained agent gets no new task until it says hello again.
   */
  drain(agentId?: string): Promise<void> {
    const targets = [...this.#agents.keys()].filter(
      (id) => agentId === undefined || id === agentId,
    );
    if (targets.length === 0) {
      return Promise.reject(
        new CuttleError('connection-refused', 'no agent to drain is connected'),
      );
    }
    return new Promise((resolve) => {
      this.#drainWaiters.push({ remaining: new Set(targets), resolve });
      for (const id of targets) {
        this.#draining.add(id);
        this.#agents.get(id)?.post({ type: 'drain' });
      }
    });
  }

  /** Sends a frame as it is, for tests of malformed input. Without `agentId` there must be one agent. */
  sendRaw(data: string | Buffer, agentId?: string): Promise<void> {
    const sessions = [...this.#agents.values()].filter(
      (session) => agentId === undefined || session.agentId === agentId,
    );
    const session = sessions[0];
    if (session === undefined || sessions.length > 1) {
      return Promise.reject(
        new CuttleError(
          'connection-refused',
          session === undefined
            ? 'no agent is connected'
            : 'several agents are connected: name one',
        ),
      );
    }
    return session.sendRaw(data);
  }

  /** Cuts every connection without a close handshake, as a network failure would. */
  disconnectAll(): void {
    for (const session of this.#sessions) session.terminate();
  }

  // ---- Connections ---------------------------------------------------------------------------

  #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (!isAuthorized(request.headers.authorization, this.#token)) {
      refuseUpgrade(socket, 401, 'Unauthorized', 'missing or wrong agent token');
      return;
    }
    const offered = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) {
      refuseUpgrade(socket, 400, 'Bad Request', `the WebSocket subprotocol must be ${SUBPROTOCOL}`);
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      const session = new AgentSession(ws, this.#sessionHost, this.#heartbeatMs);
      this.#sessions.add(session);
      this.emit('connection', { remoteAddress: request.socket.remoteAddress });
    });
  }

  /** The server's side of each session, kept off the public surface. */
  readonly #sessionHost: SessionHost = {
    onHello: (session, hello) => this.#onHello(session, hello),
    onMessage: (session, message, frame) => this.#onMessage(session, message, frame),
    onAnyMessage: (_session, message) => {
      this.emit('agent-message', message);
    },
    blobDestination: (begin: BlobBegin) => this.#store.artifactPath(begin.sha256),
    onBlobReceived: (_session, blob) => {
      this.emit('blob-received', blob);
    },
    onClose: (session, code, reason) => {
      this.#sessions.delete(session);
      this.#acksDue.delete(session);
      clearTimeout(this.#ackTimers.get(session));
      this.#ackTimers.delete(session);
      const agentId = session.agentId;
      if (agentId !== undefined && this.#agents.get(agentId) === session) {
        this.#agents.delete(agentId);
      }
      this.emit('disconnect', { agentId, code, reason });
    },
    onFailure: (error) => {
      this.emit('server-error', error);
    },
    onInboxEmpty: (session) => this.#sendAcksSoon(session),
  };

  #sendAcksSoon(session: AgentSession): void {
    if (!this.#acksDue.has(session) || this.#ackTimers.has(session)) return;
    const timer = setTimeout(() => this.#sendAcks(session), this.#ackDelayMs);
    timer.unref();
    this.#ackTimers.set(session, timer);
  }

  /** Acknowledges, once each, every task of `session` with events received since its last ack. */
  #sendAcks(session: AgentSession): void {
    clearTimeout(this.#ackTimers.get(session));
    this.#ackTimers.delete(session);
    const due = this.#acksDue.get(session);
    if (due === undefined) return;
    this.#acksDue.delete(session);
    for (const record of due) {
      if (this.#sessionOf(record) !== session) continue;
      record.acked = record.lastSeq;
      record.bytesSinceAck = 0;
      session.post({ type: 'ack', taskId: record.taskId, seq: record.lastSeq });
    }
  }

  async #onHello(session: AgentSession, hello: Hello): Promise<void> {
    const agentId = hello.agent.id;
    const older = this.#agents.get(agentId);
    if (older !== undefined && older !== session) {
      older.close(CLOSE_REPLACED, 'replaced by a newer connection with the same agent id');
    }
    this.#agents.set(agentId, session);
    this.#draining.delete(agentId);
    this.emit('hello', hello);

    // Resume what the agent still holds from the first event not stored. Its fromSeq - 1 counts
    // as an ack, so a task whose result is stored is finished by its resume entry alone.
    const held = new Set<string>();
    const resume: { taskId: string; fromSeq: number }[] = [];
    for (const { taskId } of hello.tasks) {
      const record = this.#tasks.get(taskId);
      if (record === undefined) continue; // Unknown to us: the agent cancels and forgets it.
      held.add(taskId);
      resume.push({ taskId, fromSeq: record.lastSeq + 1 });
      record.acked = record.lastSeq;
      this.#adopt(record, agentId);
    }
    await session.send({
      type: 'welcome',
      sessionId: session.sessionId,
      heartbeatMs: this.#heartbeatMs,
      resume,
    });

    for (const record of this.#tasks.values()) {
      if (record.agentId !== agentId || !record.isActive) continue;
      if (held.has(record.taskId)) {
        if (record.cancelRequested) session.post({ type: 'cancel', taskId: record.taskId });
      } else if (record.lastSeq === 0) {
        // Pushed but never arrived (the connection dropped first): push it again.
        this.#push(record, session);
      } else {
        // Events were stored, so it ran, but the agent no longer holds it (its home was lost?):
        // running it again would reuse seq numbers already stored, so its fate stays unknown.
        record.setStatus('lost');
        this.#persist(record);
      }
    }
    this.#pump();
  }

  /** An agent listed a task in its hello: it holds it, so the push arrived. */
  #adopt(record: TaskRecord, agentId: string): void {
    if (record.status === 'pending') this.#unqueue(record.taskId);
    record.agentId = agentId;
    if (record.status === 'pending' || record.status === 'pushed') {
      record.answer({ type: 'accepted', taskId: record.taskId });
      record.setStatus('accepted');
    }
    this.#persist(record);
  }

  async #onMessage(session: AgentSession, message: AgentMessage, frame: Buffer): Promise<void> {
    switch (message.type) {
      case 'accepted':
      case 'rejected': {
        const record = this.#known(session, message.taskId);
        if (record === undefined) return;
        if (message.type === 'rejected' && message.code === 'draining') {
          this.#onDrainingRejection(session, record);
          return;
        }
        record.answer(message);
        if (record.status === 'pushed') {
          record.setStatus(message.type);
          this.#persist(record);
          if (message.type === 'rejected') this.#pump();
        }
        return;
      }
      case 'event':
        await this.#onEvent(session, message, frame);
        return;
      case 'blob-request':
        this.#serveBlob(session, message.sha256);
        return;
      case 'drained':
        this.#onDrained(session);
        return;
      case 'error':
        // A `blob-corrupt` about a transfer we sent needs nothing: the agent asks again.
        this.emit('agent-error', message);
        return;
      default:
        // hello, blob-begin and blob-end are handled by the session.
        return;
    }
  }

  /**
   * Stores an event if it is the next of its task: a duplicate is acknowledged again, a gap is
   * refused and not acknowledged, so the agent re-sends from what we hold.
   */
  async #onEvent(session: AgentSession, event: TaskEvent, frame: Buffer): Promise<void> {
    const record = this.#known(session, event.taskId);
    if (record === undefined) return;
    const stored = await record.serialize(async () => {
      if (event.seq <= record.lastSeq) return true;
      const refuse = (message: string): boolean => {
        session.sendError('invalid-message', message, { ref: event.taskId });
        return false;
      };
      if (event.seq > record.lastSeq + 1) {
        return refuse(
          `event ${event.seq} of ${event.taskId} leaves a gap: the next expected is ${record.lastSeq + 1}`,
        );
      }
      if (record.hasResult) {
        return refuse(`task ${event.taskId} already ended with its result event`);
      }
      if (event.kind === 'artifact' && !(await exists(this.#store.artifactPath(event.sha256)))) {
        return refuse(`artifact ${event.sha256} of ${event.taskId} was not received as a blob`);
      }
      // Kept as received when it is one line: a busy log is neither serialized nor encoded again.
      const asReceived = frame.indexOf(0x0a) < 0;
      await this.#store.appendEvent(event, asReceived ? frame : JSON.stringify(event));
      record.store(event);
      if (event.kind === 'result') await this.#store.saveTask(record.persisted());
      return true;
    });
    if (!stored) return;
    if (this.#autoAck) {
      let due = this.#acksDue.get(session);
      if (due === undefined) this.#acksDue.set(session, (due = new Set()));
      due.add(record);
      record.bytesSinceAck += frame.byteLength;
      if (
        event.kind === 'result' ||
        record.lastSeq - record.acked >= ACK_EVERY_EVENTS ||
        record.bytesSinceAck >= ACK_EVERY_BYTES
      ) {
        this.#sendAcks(session);
      }
    }
    if (event.kind === 'result') this.#pump();
  }

  #serveBlob(session: AgentSession, sha256: string): void {
    const path = this.#store.blobPath(sha256);
    const serve = async (): Promise<void> => {
      const info = await stat(path).catch(() => undefined);
      if (info === undefined || !info.isFile()) {
        await session.send({ type: 'blob-missing', sha256 });
        return;
      }
      await sendBlob({
        transfer: session.nextTransfer(),
        path,
        sha256,
        size: info.size,
        sendText: (message) => session.send(message),
        sendBinary: (frame) => session.sendBinary(frame),
      });
    };
    // Not awaited: a large blob must not hold up the events that arrive meanwhile.
    serve().catch((error: unknown) => {
      if (session.isOpen) this.emit('server-error', asCuttleError(error));
    });
  }

  /**
   * A draining agent's `rejected`: no failure of the task, which waits for another agent, and no
   * more tasks for that one (docs/protocol.md, open point 8).
   */
  #onDrainingRejection(session: AgentSession, record: TaskRecord): void {
    if (session.agentId !== undefined) this.#draining.add(session.agentId);
    if (record.status !== 'pushed') return;
    record.agentId = undefined;
    record.setStatus('pending');
    this.#queue.unshift(record.taskId);
    this.#persist(record);
    this.#pump();
  }

  #onDrained(session: AgentSession): void {
    const agentId = session.agentId;
    if (agentId === undefined) return;
    // Also when not asked (a SIGTERM, or again after a reconnect): it takes no new task.
    this.#draining.add(agentId);
    for (let i = this.#drainWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#drainWaiters[i];
      if (waiter === undefined) continue;
      waiter.remaining.delete(agentId);
      if (waiter.remaining.size === 0) {
        this.#drainWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  // ---- Scheduling ----------------------------------------------------------------------------

  /** Pushes queued tasks, oldest first, each to the least loaded agent that can take it. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const session = this.#pickAgent();
      const taskId = this.#queue[0];
      const record = taskId === undefined ? undefined : this.#tasks.get(taskId);
      if (session === undefined || record === undefined) return;
      this.#queue.shift();
      this.#push(record, session);
    }
  }

  #pickAgent(): AgentSession | undefined {
    let best: { session: AgentSession; load: number } | undefined;
    for (const [agentId, session] of this.#agents) {
      const capacity = session.hello?.capacity;
      if (capacity === undefined || !session.isOpen || this.#draining.has(agentId)) continue;
      const load = this.#activeCount(agentId) / capacity;
      if (load >= 1 && !this.#pushWhenFull) continue;
      if (best === undefined || load < best.load) best = { session, load };
    }
    return best?.session;
  }

  #push(record: TaskRecord, session: AgentSession): void {
    record.agentId = session.agentId;
    record.setStatus('pushed');
    this.#persist(record);
    session.post(record.task);
  }

  #unqueue(taskId: string): void {
    const index = this.#queue.indexOf(taskId);
    if (index >= 0) this.#queue.splice(index, 1);
  }

  #activeCount(agentId: string): number {
    let count = 0;
    for (const record of this.#tasks.values()) {
      if (record.agentId === agentId && record.isActive) count++;
    }
    return count;
  }

  // ---- Helpers -------------------------------------------------------------------------------

  #record(taskId: string): TaskRecord {
    const record = this.#tasks.get(taskId);
    if (record === undefined) throw new UnknownTaskError(taskId);
    return record;
  }

  /** The record of a task an agent names, or an `error` back to it. */
  #known(session: AgentSession, taskId: string): TaskRecord | undefined {
    const record = this.#tasks.get(taskId);
    if (record === undefined) {
      session.sendError('invalid-message', `unknown task ${taskId}`, { ref: taskId });
    }
    return record;
  }

  #sessionOf(record: TaskRecord): AgentSession | undefined {
    return record.agentId === undefined ? undefined : this.#agents.get(record.agentId);
  }

  #persist(record: TaskRecord): void {
    record
      .serialize(() => this.#store.saveTask(record.persisted()))
      .catch((error: unknown) => this.emit('server-error', asCuttleError(error)));
  }

  #address(): AddressInfo {
    const address = this.#server?.address();
    if (address === undefined || address === null || typeof address === 'string') {
      throw new CuttleError('internal', 'the reference server is not listening');
    }
    return address;
  }
}

/** Answers an upgrade request with a plain HTTP error: no WebSocket is opened. */
function refuseUpgrade(socket: Duplex, status: number, statusText: string, body: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\n` +
      'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
