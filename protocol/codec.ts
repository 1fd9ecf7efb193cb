/**
 * Text and binary frames to validated messages and back. Decoding is the boundary: nothing past it
 * sees an unvalidated object.
 */
import type { z } from 'zod';
import { CuttleError, InvalidMessageError } from './errors.js';
import {
  agentMessageSchema,
  MAX_BLOB_CHUNK_BYTES,
  serverMessageSchema,
  taskIdSchema,
  taskSchema,
  type AgentMessage,
  type ServerMessage,
  type Task,
} from './messages.js';

const SERVER_TYPES = new Set(serverMessageSchema.options.map((o) => o.shape.type.value));
const AGENT_TYPES = new Set(
  agentMessageSchema.options.flatMap((o) => ('options' in o ? ['event'] : [o.shape.type.value])),
);

/** A `task` with a usable taskId that is otherwise not a valid task: answered with `rejected`. */
export class InvalidTaskError extends CuttleError {
  readonly taskId: string;

  constructor(taskId: string, message: string, options?: { cause?: unknown }) {
    super('invalid-task', message, options);
    this.taskId = taskId;
  }
}

/** Formats zod issues as `task.container.image: expected string`, the way a user reads a path. */
export function describeIssues(prefix: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}

function parseObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidMessageError('invalid-message', 'frame is not valid JSON', undefined, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessageError('invalid-message', 'frame is not a JSON object');
  }
  // A plain object from JSON.parse: copying its entries gives a typed record without a cast.
  return Object.fromEntries(Object.entries(value));
}

function refOf(object: Record<string, unknown>): string | undefined {
  const ref = object.taskId ?? object.transfer ?? object.sha256;
  return typeof ref === 'string' || typeof ref === 'number' ? String(ref) : undefined;
}

function decodeWith<T>(
  text: string,
  knownTypes: Set<string>,
  schema: z.ZodType<T>,
  onTask?: (object: Record<string, unknown>) => void,
): T {
  const object = parseObject(text);
  const type = object.type;
  if (typeof type !== 'string') {
    throw new InvalidMessageError('invalid-message', 'message has no string "type"', refOf(object));
  }
  if (!knownTypes.has(type)) {
    throw new InvalidMessageError('unknown-type', `unknown message type "${type}"`, refOf(object));
  }
  onTask?.(object);
  const parsed = schema.safeParse(object);
  if (!parsed.success) {
    throw new InvalidMessageError(
      'invalid-message',
      describeIssues(type, parsed.error),
      refOf(object),
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/**
 * Decodes a text frame the agent received. Throws InvalidMessageError (answer `error`) or, for a
 * `task` with a valid taskId, InvalidTaskError (answer `rejected` with `invalid-task`).
 */
export function decodeServerMessage(text: string): ServerMessage {
  return decodeWith(text, SERVER_TYPES, serverMessageSchema, (object) => {
    if (object.type !== 'task') return;
    const id = taskIdSchema.safeParse(object.taskId);
    if (!id.success) {
      throw new InvalidMessageError(
        'invalid-message',
        describeIssues('task.taskId', id.error),
        undefined,
      );
    }
    const task = taskSchema.safeParse(object);
    if (!task.success) {
      throw new InvalidTaskError(id.data, describeIssues('task', task.error), {
        cause: task.error,
      });
    }
  });
}

/** Decodes a text frame the server received. Throws InvalidMessageError. */
export function decodeAgentMessage(text: string): AgentMessage {
  return decodeWith(text, AGENT_TYPES, agentMessageSchema);
}

/** Validates a task given as an object (a file or an HTTP body), with the same errors. */
export function parseTask(value: unknown): Task {
  const parsed = taskSchema.safeParse(value);
  if (!parsed.success) {
    throw new CuttleError('invalid-task', describeIssues('task', parsed.error), {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

export function encodeMessage(message: AgentMessage | ServerMessage): string {
  return JSON.stringify(message);
}

/** A binary frame: 4-byte big-endian transfer number, then the chunk. */
export function encodeBlobFrame(transfer: number, chunk: Uint8Array): Buffer {
  if (chunk.byteLength > MAX_BLOB_CHUNK_BYTES) {
    throw new CuttleError('internal', `blob chunk of ${chunk.byteLength} bytes exceeds 1 MiB`);
  }
  const frame = Buffer.allocUnsafe(4 + chunk.byteLength);
  frame.writeUInt32BE(transfer, 0);
  frame.set(chunk, 4);
  return frame;
}

export function decodeBlobFrame(frame: Buffer): { transfer: number; chunk: Buffer } {
  if (frame.byteLength < 4) {
    throw new InvalidMessageError('invalid-message', 'binary frame shorter than its 4-byte header');
  }
  return { transfer: frame.readUInt32BE(0), chunk: frame.subarray(4) };
}
