/**
 * Every message of protocol v1 (PROTOCOL.md) as a valibot schema, so the types and the runtime
 * validation at the boundary come from one definition. Unknown fields are stripped (`v.object`),
 * which is how "unknown fields are ignored" is honoured.
 */
import * as v from 'valibot';
import { ERROR_CODES } from './errors.js';

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = 'cuttle.v1';
/** Largest text frame (one JSON object) and largest binary frame payload. */
export const MAX_TEXT_FRAME_BYTES = 1024 * 1024;
export const MAX_BLOB_CHUNK_BYTES = 1024 * 1024;
export const MAX_BINARY_FRAME_BYTES = MAX_BLOB_CHUNK_BYTES + 4;
export const DEFAULT_HEARTBEAT_MS = 15_000;
/** Flow control: unacknowledged events in flight per task (section 4). */
export const MAX_UNACKED_EVENTS = 512;
export const MAX_UNACKED_BYTES = 8 * 1024 * 1024;
/** A log line longer than this (UTF-8 bytes) is sent in partial pieces (section 4). */
export const MAX_LOG_LINE_BYTES = 128 * 1024;

export const TASK_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
export const taskIdSchema = v.pipe(
  v.string(),
  v.regex(TASK_ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 . _ -'),
);

// Integers must be safe integers (below 2^53) and other numbers finite, as with zod before.
const int = v.pipe(v.number(), v.safeInteger());
const intFrom = (min: number) => v.pipe(v.number(), v.safeInteger(), v.minValue(min));
const intBetween = (min: number, max: number) =>
  v.pipe(v.number(), v.safeInteger(), v.minValue(min), v.maxValue(max));
const nonEmpty = v.pipe(v.string(), v.minLength(1));
/**
 * PROTOCOL.md does not fix the case of hex digits: either is accepted, and lower-cased here so
 * that every comparison, cache key and file name past the boundary sees one form.
 */
const sha256Schema = v.pipe(
  v.string(),
  v.regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits'),
  v.toLowerCase(),
);
const seqSchema = intFrom(1);
const sizeSchema = intFrom(0);
const transferSchema = intBetween(0, 0xffffffff);
const errorCodeSchema = v.picklist(ERROR_CODES);

// ---- Server to agent -------------------------------------------------------------------------

export const welcomeSchema = v.object({
  type: v.literal('welcome'),
  sessionId: v.string(),
  heartbeatMs: v.optional(intBetween(100, 600_000), DEFAULT_HEARTBEAT_MS),
  resume: v.optional(v.array(v.object({ taskId: taskIdSchema, fromSeq: seqSchema })), []),
});

export const variableSchema = v.object({
  name: nonEmpty,
  value: v.string(),
  sensitive: v.optional(v.boolean(), false),
});

const feedObjectSchema = v.object({
  registry: v.optional(v.string()),
  username: v.optional(v.string()),
  password: v.optional(v.string()),
});
/**
 * `v.object` takes an array as an object without the keys; zod refused it. Every other object here
 * has a required key (or, the container, must name one source), so an array fails there anyway;
 * this one has none, so it is refused first.
 */
export const feedSchema = v.pipe(
  v.custom<v.InferInput<typeof feedObjectSchema>>(
    (value) => !Array.isArray(value),
    'expected object, received array',
  ),
  feedObjectSchema,
);

export const pullPolicySchema = v.picklist(['always', 'if-not-present', 'never']);

export const gitSourceSchema = v.object({
  url: nonEmpty,
  ref: v.optional(nonEmpty),
  dockerfile: v.optional(nonEmpty, 'Dockerfile'),
  context: v.optional(nonEmpty, '.'),
});

export const containerSchema = v.pipe(
  v.object({
    image: v.optional(nonEmpty),
    feed: v.optional(feedSchema),
    pullPolicy: v.optional(pullPolicySchema, 'always'),
    dockerfile: v.optional(nonEmpty),
    git: v.optional(gitSourceSchema),
  }),
  v.check(
    (c) => [c.image, c.dockerfile, c.git].filter((x) => x !== undefined).length === 1,
    'give exactly one of image, dockerfile, git',
  ),
);

export const packageSchema = v.object({
  name: v.pipe(
    v.string(),
    v.minLength(1),
    v.check((n) => !n.includes('/') && n !== '.' && n !== '..', 'must be a plain file name'),
  ),
  sha256: sha256Schema,
  size: sizeSchema,
});

export const toolSchema = v.object({
  name: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
  ),
  version: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9._+-]{1,64}$/, 'must be a version such as 28.1.0'),
  ),
  libc: v.optional(v.picklist(['glibc', 'musl'])),
  bundle: v.object({ sha256: sha256Schema, size: sizeSchema }),
});

export const taskSchema = v.object({
  type: v.literal('task'),
  taskId: taskIdSchema,
  name: v.optional(v.string(), ''),
  script: v.object({ syntax: v.picklist(['bash', 'sh']), body: v.string() }),
  variables: v.optional(v.array(variableSchema), []),
  container: v.optional(containerSchema),
  packages: v.optional(v.array(packageSchema), []),
  tool: v.optional(toolSchema),
  timeoutMs: v.optional(intFrom(1)),
});

export const cancelSchema = v.object({ type: v.literal('cancel'), taskId: taskIdSchema });
export const ackSchema = v.object({
  type: v.literal('ack'),
  taskId: taskIdSchema,
  seq: intFrom(0),
});
export const drainSchema = v.object({ type: v.literal('drain') });
export const blobMissingSchema = v.object({
  type: v.literal('blob-missing'),
  sha256: sha256Schema,
});

// ---- Either direction ------------------------------------------------------------------------

export const errorMessageSchema = v.object({
  type: v.literal('error'),
  code: v.string(),
  message: v.string(),
  ref: v.optional(v.string()),
  transfer: v.optional(intFrom(0)),
});

export const blobBeginSchema = v.object({
  type: v.literal('blob-begin'),
  transfer: transferSchema,
  sha256: sha256Schema,
  size: sizeSchema,
});

export const blobEndSchema = v.object({
  type: v.literal('blob-end'),
  transfer: transferSchema,
});

// ---- Agent to server -------------------------------------------------------------------------

export const dockerCapabilitySchema = v.object({
  version: v.string(),
  apiVersion: v.string(),
  os: v.string(),
  arch: v.string(),
  imageMounts: v.boolean(),
});

export const helloSchema = v.object({
  type: v.literal('hello'),
  protocol: int,
  agent: v.object({ id: nonEmpty, name: v.string(), version: v.string() }),
  capacity: intFrom(1),
  capabilities: v.object({
    docker: v.nullable(dockerCapabilitySchema),
    hostExecution: v.boolean(),
    shells: v.array(v.string()),
    tools: v.optional(v.array(v.object({ name: v.string(), version: v.string() })), []),
  }),
  tasks: v.optional(
    v.array(v.object({ taskId: taskIdSchema, lastSeq: intFrom(0), finished: v.boolean() })),
    [],
  ),
});

export const acceptedSchema = v.object({ type: v.literal('accepted'), taskId: taskIdSchema });
export const rejectedSchema = v.object({
  type: v.literal('rejected'),
  taskId: taskIdSchema,
  code: v.picklist(['invalid-task', 'draining']),
  message: v.string(),
});
export const blobRequestSchema = v.object({
  type: v.literal('blob-request'),
  sha256: sha256Schema,
});
export const drainedSchema = v.object({ type: v.literal('drained') });

export const TASK_STATES = [
  'queued',
  'preparing',
  'pulling',
  'building',
  'running',
  'collecting',
  'cleaning',
] as const;
export const LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;
export const LOG_LEVELS = ['verbose', 'info', 'highlight', 'wait', 'warning', 'error'] as const;
export const OUTCOMES = ['success', 'failure', 'cancelled', 'timeout', 'error'] as const;

const eventBase = {
  type: v.literal('event'),
  taskId: taskIdSchema,
  seq: seqSchema,
  time: v.string(),
};

export const stateEventSchema = v.object({
  ...eventBase,
  kind: v.literal('state'),
  state: v.picklist(TASK_STATES),
});
/**
 * One check for a whole `lines` array: a busy log's events carry thousands of lines, and checking
 * each as a schema of its own (a result object per line, and a copy of the array) was most of the
 * reference server's validation time.
 */
function isStringArray(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

export const logEventSchema = v.object({
  ...eventBase,
  kind: v.literal('log'),
  stream: v.picklist(LOG_STREAMS),
  level: v.picklist(LOG_LEVELS),
  lines: v.custom<string[]>(isStringArray, 'expected an array of strings'),
  partial: v.optional(v.boolean()),
});
export const progressEventSchema = v.object({
  ...eventBase,
  kind: v.literal('progress'),
  activity: v.picklist(['pull', 'build', 'transfer', 'script']),
  message: v.string(),
  percent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100))),
});
export const variableEventSchema = v.object({
  ...eventBase,
  kind: v.literal('variable'),
  name: v.string(),
  value: v.string(),
  sensitive: v.boolean(),
});
export const artifactEventSchema = v.object({
  ...eventBase,
  kind: v.literal('artifact'),
  name: v.string(),
  path: v.string(),
  size: sizeSchema,
  sha256: sha256Schema,
});
export const resultEventSchema = v.object({
  ...eventBase,
  kind: v.literal('result'),
  outcome: v.picklist(OUTCOMES),
  exitCode: v.nullable(int),
  error: v.optional(v.object({ code: errorCodeSchema, message: v.string() })),
  durationMs: v.pipe(v.number(), v.finite(), v.minValue(0)),
});

export const eventSchema = v.variant('kind', [
  stateEventSchema,
  logEventSchema,
  progressEventSchema,
  variableEventSchema,
  artifactEventSchema,
  resultEventSchema,
]);

export const serverMessageSchema = v.variant('type', [
  welcomeSchema,
  taskSchema,
  cancelSchema,
  ackSchema,
  drainSchema,
  errorMessageSchema,
  blobBeginSchema,
  blobEndSchema,
  blobMissingSchema,
]);

export const agentMessageSchema = v.variant('type', [
  helloSchema,
  acceptedSchema,
  rejectedSchema,
  eventSchema,
  errorMessageSchema,
  blobBeginSchema,
  blobEndSchema,
  blobRequestSchema,
  drainedSchema,
]);

export type Welcome = v.InferOutput<typeof welcomeSchema>;
export type Task = v.InferOutput<typeof taskSchema>;
export type TaskInput = v.InferInput<typeof taskSchema>;
export type TaskVariable = v.InferOutput<typeof variableSchema>;
export type ContainerSpec = v.InferOutput<typeof containerSchema>;
export type PullPolicy = v.InferOutput<typeof pullPolicySchema>;
export type GitSource = v.InferOutput<typeof gitSourceSchema>;
export type PackageRef = v.InferOutput<typeof packageSchema>;
export type ToolRef = v.InferOutput<typeof toolSchema>;
export type Cancel = v.InferOutput<typeof cancelSchema>;
export type Ack = v.InferOutput<typeof ackSchema>;
export type Drain = v.InferOutput<typeof drainSchema>;
export type ErrorMessage = v.InferOutput<typeof errorMessageSchema>;
export type BlobBegin = v.InferOutput<typeof blobBeginSchema>;
export type BlobEnd = v.InferOutput<typeof blobEndSchema>;
export type BlobMissing = v.InferOutput<typeof blobMissingSchema>;
export type BlobRequest = v.InferOutput<typeof blobRequestSchema>;
export type Hello = v.InferOutput<typeof helloSchema>;
export type DockerCapability = v.InferOutput<typeof dockerCapabilitySchema>;
export type Accepted = v.InferOutput<typeof acceptedSchema>;
export type Rejected = v.InferOutput<typeof rejectedSchema>;
export type Drained = v.InferOutput<typeof drainedSchema>;
export type TaskEvent = v.InferOutput<typeof eventSchema>;
export type StateEvent = v.InferOutput<typeof stateEventSchema>;
export type LogEvent = v.InferOutput<typeof logEventSchema>;
export type ProgressEvent = v.InferOutput<typeof progressEventSchema>;
export type VariableEvent = v.InferOutput<typeof variableEventSchema>;
export type ArtifactEvent = v.InferOutput<typeof artifactEventSchema>;
export type ResultEvent = v.InferOutput<typeof resultEventSchema>;
export type TaskState = (typeof TASK_STATES)[number];
export type LogStream = (typeof LOG_STREAMS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Outcome = (typeof OUTCOMES)[number];
export type ServerMessage = v.InferOutput<typeof serverMessageSchema>;
export type AgentMessage = v.InferOutput<typeof agentMessageSchema>;

/** An event's payload before the journal gives it `taskId`, `seq` and `time`. */
type WithoutEnvelope<T> = T extends unknown ? Omit<T, 'type' | 'taskId' | 'seq' | 'time'> : never;
export type EventBody = WithoutEnvelope<TaskEvent>;
