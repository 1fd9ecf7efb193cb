/**
 * Text and binary frames to validated messages and back. Decoding is the boundary: nothing past it
 * sees an unvalidated object.
 */
import * as v from 'valibot';
import { clipText, CuttleError, InvalidMessageError, MAX_REF_CHARS } from './errors.js';
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

const SERVER_TYPES = new Set<string>(
  serverMessageSchema.options.map((o) => o.entries.type.literal),
);
const AGENT_TYPES = new Set<string>(
  agentMessageSchema.options.flatMap((o) =>
    o.type === 'variant' ? ['event'] : [o.entries.type.literal],
  ),
);

/** A `task` with a usable taskId that is otherwise not a valid task: answered with `rejected`. */
export class InvalidTaskError extends CuttleError {
  readonly taskId: string;

  constructor(taskId: string, message: string, options?: { cause?: unknown }) {
    super('invalid-task', message, options);
    this.taskId = taskId;
  }
}

/**
 * How valibot words an issue nobody gave a message of its own. What was received is named by its
 * type, as zod did (a wrong-typed field may hold a secret, or a megabyte); only a short string
 * given for one of a list of keywords is quoted, and numbers out of range are shown.
 */
function issueMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.path?.[0]?.origin === 'key') {
    return issue.expected === 'never' ? 'unknown key' : 'required';
  }
  if (issue.kind === 'schema') {
    const expected = issue.expected ?? '';
    if (issue.type === 'picklist' || issue.type === 'variant') {
      // `("bash" | "sh")`, or one option without the parentheses.
      const options = expected.replace(/^\((.*)\)$/, '$1');
      return `expected one of ${options}, received ${keyword(issue.input)}`;
    }
    const type = expected === 'Object' || expected === 'Array' ? expected.toLowerCase() : expected;
    return `expected ${type}, received ${typeOf(issue.input)}`;
  }
  switch (issue.type) {
    case 'min_length':
      return issue.requirement === 1
        ? 'must not be empty'
        : `expected a length of ${issue.expected}, received ${issue.received}`;
    case 'min_value':
      return `too small: expected ${issue.expected}, received ${issue.received}`;
    case 'max_value':
      return `too big: expected ${issue.expected}, received ${issue.received}`;
    case 'safe_integer':
      return Number.isInteger(issue.input)
        ? `too big: expected an integer below 2^53, received ${issue.received}`
        : `expected an integer, received ${issue.received}`;
    case 'finite':
      return `expected a finite number, received ${issue.received}`;
    default:
      return issue.message;
  }
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (Number.isNaN(value)) return 'NaN';
  return typeof value;
}

function keyword(value: unknown): string {
  return typeof value === 'string' && value.length <= 40 ? JSON.stringify(value) : typeOf(value);
}

/** Parse options for input whose errors a user reads: messages from `issueMessage`. */
export const READABLE_ISSUES: v.Config<v.BaseIssue<unknown>> = { message: issueMessage };

/** Issues listed in an error's text; the rest are counted (a task with 40,000 bad variables). */
export const MAX_LISTED_ISSUES = 10;

/**
 * Formats issues as `task.container.image: expected string, received number`, path first: the
 * first MAX_LISTED_ISSUES of them, then how many more, at most MAX_ERROR_TEXT_CHARS in all, so
 * the answer that carries it fits in a text frame.
 */
export function describeIssues(prefix: string, issues: readonly v.BaseIssue<unknown>[]): string {
  const listed = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => {
    const path = [prefix, v.getDotPath(issue) ?? ''].filter((p) => p !== '').join('.');
    return `${path}: ${issue.message}`;
  });
  const more = issues.length - listed.length;
  if (more > 0) listed.push(`and ${more} more issue${more === 1 ? '' : 's'}`);
  return clipText(listed.join('; '));
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
  // Not validated yet: it may be as long as the frame.
  return typeof ref === 'string' || typeof ref === 'number'
    ? clipText(String(ref), MAX_REF_CHARS)
    : undefined;
}

function decodeWith<TSchema extends v.GenericSchema>(
  text: string,
  knownTypes: Set<string>,
  schema: TSchema,
  onTask?: (object: Record<string, unknown>) => void,
): v.InferOutput<TSchema> {
  const object = parseObject(text);
  const type = object.type;
  if (typeof type !== 'string') {
    throw new InvalidMessageError('invalid-message', 'message has no string "type"', refOf(object));
  }
  if (!knownTypes.has(type)) {
    throw new InvalidMessageError(
      'unknown-type',
      `unknown message type "${clipText(type, MAX_REF_CHARS)}"`,
      refOf(object),
    );
  }
  onTask?.(object);
  const parsed = v.safeParse(schema, object, READABLE_ISSUES);
  if (!parsed.success) {
    throw new InvalidMessageError(
      'invalid-message',
      describeIssues(type, parsed.issues),
      refOf(object),
      { cause: new v.ValiError(parsed.issues) },
    );
  }
  return parsed.output;
}

/**
 * Decodes a text frame the agent received. Throws InvalidMessageError (answer `error`) or, for a
 * `task` with a valid taskId, InvalidTaskError (answer `rejected` with `invalid-task`).
 */
export function decodeServerMessage(text: string): ServerMessage {
  return decodeWith(text, SERVER_TYPES, serverMessageSchema, (object) => {
    if (object.type !== 'task') return;
    const id = v.safeParse(taskIdSchema, object.taskId, READABLE_ISSUES);
    if (!id.success) {
      throw new InvalidMessageError(
        'invalid-message',
        describeIssues('task.taskId', id.issues),
        undefined,
      );
    }
    const task = v.safeParse(taskSchema, object, READABLE_ISSUES);
    if (!task.success) {
      throw new InvalidTaskError(id.output, describeIssues('task', task.issues), {
        cause: new v.ValiError(task.issues),
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
  const parsed = v.safeParse(taskSchema, value, READABLE_ISSUES);
  if (!parsed.success) {
    throw new CuttleError('invalid-task', describeIssues('task', parsed.issues), {
      cause: new v.ValiError(parsed.issues),
    });
  }
  return parsed.output;
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
