/**
 * The reference server's optional HTTP API, on the same port as the agents' WebSocket and behind
 * the same Bearer token. It is what `cuttle submit FILE --follow` talks to:
 *
 *   POST /tasks                       JSON task (taskId optional) → 201 {taskId} | 400 {code, message}
 *   GET  /tasks                       → 200 [TaskSummary]
 *   GET  /tasks/<id>                  → 200 TaskSummary
 *   GET  /tasks/<id>/events[?follow=1] → 200 NDJSON of stored events from the first; with follow=1
 *                                       kept open until the result event (or the task ends without one)
 *   POST /tasks/<id>/cancel           → 202
 *   GET  /artifacts/<sha256>          → 200 the artifact's bytes
 *
 * Errors are JSON `{ code, message }` with the cuttle error code.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseTask } from '../codec.js';
import { asCuttleError, CuttleError } from '../errors.js';
import { MAX_TEXT_FRAME_BYTES, type Task, type TaskEvent } from '../messages.js';
import { isAuthorized } from './auth.js';
import {
  isTerminalStatus,
  type TaskHandle,
  type TaskStatus,
  type TaskSummary,
} from './task-record.js';

/** What the API needs from the server. */
export interface HttpApiHost {
  submit(task: Task): TaskHandle;
  task(taskId: string): TaskHandle | undefined;
  summaries(): TaskSummary[];
  cancel(taskId: string): void;
  artifactPath(sha256: string): string;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** With no host the API is off: every request is answered 404. */
export function createHttpApiHandler(host: HttpApiHost | undefined, token: string): Handler {
  return (request, response) => {
    if (host === undefined) {
      sendJson(response, 404, { code: 'not-found', message: 'the HTTP API is not enabled' });
      return;
    }
    route(host, token, request, response).catch((error: unknown) => {
      const failure = asCuttleError(error);
      if (!response.headersSent) sendJson(response, 500, errorBody(failure));
      else response.destroy(failure);
    });
  };
}

async function route(
  host: HttpApiHost,
  token: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (!isAuthorized(request.headers.authorization, token)) {
    sendJson(response, 401, { code: 'unauthorized', message: 'missing or wrong token' });
    return;
  }
  const url = new URL(request.url ?? '/', 'http://localhost');
  const parts = url.pathname
    .split('/')
    .filter((part) => part !== '')
    .map(decodeURIComponent);
  const method = request.method ?? 'GET';
  const [collection, id, action] = parts;

  if (collection === 'tasks' && id === undefined) {
    if (method === 'POST') return submit(host, request, response);
    if (method === 'GET') return sendJson(response, 200, host.summaries());
  }
  if (collection === 'tasks' && id !== undefined) {
    const task = host.task(id);
    if (task === undefined) {
      return sendJson(response, 404, { code: 'invalid-message', message: `unknown task ${id}` });
    }
    if (method === 'GET' && action === undefined) return sendJson(response, 200, task.summary());
    if (method === 'GET' && action === 'events' && parts.length === 3) {
      return streamEvents(task, url.searchParams.get('follow') === '1', request, response);
    }
    if (method === 'POST' && action === 'cancel' && parts.length === 3) {
      host.cancel(id);
      return sendJson(response, 202, task.summary());
    }
  }
  if (collection === 'artifacts' && id !== undefined && parts.length === 2 && method === 'GET') {
    return sendArtifact(host, id, response);
  }
  sendJson(response, 404, { code: 'not-found', message: `no route for ${method} ${url.pathname}` });
}

async function submit(
  host: HttpApiHost,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  let task: Task;
  try {
    const body = await readJsonObject(request);
    body.taskId ??= `t-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    task = parseTask({ ...body, type: 'task' });
    host.submit(task);
  } catch (error) {
    const failure = asCuttleError(error);
    if (failure.code === 'internal') throw failure;
    sendJson(response, 400, errorBody(failure));
    return;
  }
  sendJson(response, 201, { taskId: task.taskId });
}

/**
 * Stored events first, then live ones. The snapshot and the subscription happen in the same
 * tick, so no event falls between them.
 */
function streamEvents(
  task: TaskHandle,
  follow: boolean,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  response.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8' });
  const write = (event: TaskEvent): void => {
    response.write(JSON.stringify(event) + '\n');
  };
  for (const event of task.events) write(event);
  if (!follow || isTerminalStatus(task.status)) {
    response.end();
    return;
  }
  const onEvent = (event: TaskEvent): void => {
    write(event);
    if (event.kind === 'result') stop();
  };
  const onStatus = (status: TaskStatus): void => {
    if (isTerminalStatus(status)) stop();
  };
  const stop = (): void => {
    task.off('event', onEvent);
    task.off('status', onStatus);
    if (!response.writableEnded) response.end();
  };
  task.on('event', onEvent);
  task.on('status', onStatus);
  request.on('close', stop);
  response.on('close', stop);
}

async function sendArtifact(host: HttpApiHost, sha256: string, response: ServerResponse) {
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    sendJson(response, 400, { code: 'invalid-message', message: 'not a SHA-256' });
    return;
  }
  const path = host.artifactPath(sha256);
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile()) {
    sendJson(response, 404, { code: 'not-found', message: `no artifact ${sha256}` });
    return;
  }
  response.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': info.size,
  });
  createReadStream(path)
    .on('error', (error) => response.destroy(error))
    .pipe(response);
}

async function readJsonObject(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    if (!Buffer.isBuffer(chunk)) throw new CuttleError('internal', 'request stream gave text');
    size += chunk.byteLength;
    // A task travels in one text frame, so a body larger than a frame cannot be a task.
    if (size > MAX_TEXT_FRAME_BYTES) {
      throw new CuttleError('invalid-task', 'the task is larger than 1 MiB');
    }
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new CuttleError('invalid-task', 'the body is not valid JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CuttleError('invalid-task', 'the body is not a JSON object');
  }
  return Object.fromEntries(Object.entries(value));
}

function errorBody(error: CuttleError): { code: string; message: string } {
  return { code: error.code, message: error.message };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}
