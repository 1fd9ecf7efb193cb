/**
 * The reference server for the bench, in a process of its own as `cuttle server` runs, driven by
 * the bench over IPC (server-ipc.ts). In the bench's own process the server shared a heap with the
 * harness, and V8 ran ~65 full collections per GiB of artifact received where this process runs
 * 0–2 (docs/performance.md, round 9).
 *
 *   node dist/bench/server-child.js '{"dataDir":…,"port":…,"token":…}'   (an IPC channel is required)
 */
import * as v from 'valibot';
import { parseTask, type AgentMessage, type TaskEvent } from '../protocol/index.js';
import { ReferenceServer } from '../protocol/reference-server/index.js';
import {
  absoluteNow,
  childConfigSchema,
  requestSchema,
  type ServerChildConfig,
  type ServerNotice,
  type ServerRequest,
} from './server-ipc.js';

function send(notice: ServerNotice): void {
  process.send?.(notice);
}

function parseConfig(text: string | undefined): ServerChildConfig {
  return v.parse(childConfigSchema, JSON.parse(text ?? '{}'));
}

/**
 * Forwards a task's events. Log lines of the usual length are only counted, and a log event with
 * no other line is folded into the next notice, so that the bench's own bookkeeping of a busy log
 * is a few IPC messages rather than one per event.
 */
function forward(taskId: string, usualLineLength: number | undefined) {
  let lineCount = 0;
  let bytes = 0;
  let stream = 'stdout';
  const flush = (at: number): void => {
    if (lineCount === 0) return;
    send({ type: 'log', taskId, at, stream, lineCount, bytes, lines: [] });
    lineCount = 0;
    bytes = 0;
  };
  return (event: TaskEvent): void => {
    const at = absoluteNow();
    if (event.kind !== 'log') {
      flush(at);
      send({ type: 'event', taskId, at, event });
      return;
    }
    if (event.stream !== stream) flush(at);
    stream = event.stream;
    const lines: string[] = [];
    // A length check only, as the bench did when the server ran in its process: 5 million lines.
    for (const line of event.lines) {
      bytes += line.length + 1;
      if (line.length !== usualLineLength) lines.push(line);
    }
    lineCount += event.lines.length;
    if (lines.length === 0) return;
    send({ type: 'log', taskId, at, stream, lineCount, bytes, lines });
    lineCount = 0;
    bytes = 0;
  };
}

async function answer(server: ReferenceServer, request: ServerRequest): Promise<unknown> {
  switch (request.op) {
    case 'submit': {
      const fields = v.parse(v.record(v.string(), v.unknown()), request.input);
      const task = parseTask({ ...fields, type: 'task' });
      const submittedAt = absoluteNow();
      const handle = server.submit(task);
      const taskId = handle.taskId;
      handle.on('event', forward(taskId, request.usualLineLength));
      handle.on('status', (status) => send({ type: 'status', taskId, status, at: absoluteNow() }));
      return { status: handle.status, submittedAt };
    }
    case 'add-blob':
      return server.addBlob(request.path);
    case 'artifact-path':
      return server.artifactPath(request.sha256);
    case 'disconnect-all':
      server.disconnectAll();
      return undefined;
    case 'close':
      await server.close();
      setImmediate(() => process.exit(0));
      return undefined;
  }
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv[2]);
  const server = new ReferenceServer({
    token: config.token,
    host: '127.0.0.1',
    port: config.port,
    dataDir: config.dataDir,
    ...(config.heartbeatMs === undefined ? {} : { heartbeatMs: config.heartbeatMs }),
  });
  server.on('hello', () => send({ type: 'hello', at: absoluteNow() }));
  server.on('agent-message', (message: AgentMessage) => {
    if (message.type === 'blob-request') send({ type: 'blob-request', sha256: message.sha256 });
    if (message.type === 'blob-begin') {
      send({ type: 'blob-begin', sha256: message.sha256, at: absoluteNow() });
    }
  });
  process.on('message', (raw: unknown) => {
    const request = v.parse(requestSchema, raw);
    answer(server, request).then(
      (value) => send({ type: 'reply', id: request.id, at: absoluteNow(), value }),
      (error: unknown) =>
        send({ type: 'reply', id: request.id, at: absoluteNow(), error: String(error) }),
    );
  });
  // The bench going away (its IPC channel closing) ends this process too.
  process.on('disconnect', () => {
    void server.close().finally(() => process.exit(0));
  });
  await server.listen();
  send({ type: 'listening', url: server.url, at: absoluteNow() });
}

main().catch((error: unknown) => {
  console.error(`bench server: ${String(error)}`);
  process.exit(1);
});
