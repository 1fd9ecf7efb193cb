/**
 * Every message of protocol v1 (PROTOCOL.md) as a zod schema, so the types and the runtime
 * validation at the boundary come from one definition. Unknown fields are stripped, which is how
 * "unknown fields are ignored" is honoured.
 */
import { z } from 'zod';
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
export const taskIdSchema = z
  .string()
  .regex(TASK_ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 . _ -');

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');
const seqSchema = z.number().int().min(1);
const errorCodeSchema = z.enum(ERROR_CODES);

// ---- Server to agent -------------------------------------------------------------------------

export const welcomeSchema = z.object({
  type: z.literal('welcome'),
  sessionId: z.string(),
  heartbeatMs: z.number().int().min(100).max(600_000).default(DEFAULT_HEARTBEAT_MS),
  resume: z.array(z.object({ taskId: taskIdSchema, fromSeq: seqSchema })).default([]),
});

export const variableSchema = z.object({
  name: z.string().min(1),
  value: z.string(),
  sensitive: z.boolean().default(false),
});

export const feedSchema = z.object({
  registry: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
});

export const pullPolicySchema = z.enum(['always', 'if-not-present', 'never']);

export const gitSourceSchema = z.object({
  url: z.string().min(1),
  ref: z.string().min(1).optional(),
  dockerfile: z.string().min(1).default('Dockerfile'),
  context: z.string().min(1).default('.'),
});

export const containerSchema = z
  .object({
    image: z.string().min(1).optional(),
    feed: feedSchema.optional(),
    pullPolicy: pullPolicySchema.default('always'),
    dockerfile: z.string().min(1).optional(),
    git: gitSourceSchema.optional(),
  })
  .refine(
    (c) => [c.image, c.dockerfile, c.git].filter((x) => x !== undefined).length === 1,
    'give exactly one of image, dockerfile, git',
  );

export const packageSchema = z.object({
  name: z
    .string()
    .min(1)
    .refine((n) => !n.includes('/') && n !== '.' && n !== '..', 'must be a plain file name'),
  sha256: sha256Schema,
  size: z.number().int().min(0),
});

export const toolSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
  version: z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/, 'must be a version such as 28.1.0'),
  libc: z.enum(['glibc', 'musl']).optional(),
  bundle: z.object({ sha256: sha256Schema, size: z.number().int().min(0) }),
});

export const taskSchema = z.object({
  type: z.literal('task'),
  taskId: taskIdSchema,
  name: z.string().default(''),
  script: z.object({ syntax: z.enum(['bash', 'sh']), body: z.string() }),
  variables: z.array(variableSchema).default([]),
  container: containerSchema.optional(),
  packages: z.array(packageSchema).default([]),
  tool: toolSchema.optional(),
  timeoutMs: z.number().int().min(1).optional(),
});

export const cancelSchema = z.object({ type: z.literal('cancel'), taskId: taskIdSchema });
export const ackSchema = z.object({
  type: z.literal('ack'),
  taskId: taskIdSchema,
  seq: z.number().int().min(0),
});
export const drainSchema = z.object({ type: z.literal('drain') });
export const blobMissingSchema = z.object({
  type: z.literal('blob-missing'),
  sha256: sha256Schema,
});

// ---- Either direction ------------------------------------------------------------------------

export const errorMessageSchema = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  ref: z.string().optional(),
  transfer: z.number().int().min(0).optional(),
});

export const blobBeginSchema = z.object({
  type: z.literal('blob-begin'),
  transfer: z.number().int().min(0).max(0xffffffff),
  sha256: sha256Schema,
  size: z.number().int().min(0),
});

export const blobEndSchema = z.object({
  type: z.literal('blob-end'),
  transfer: z.number().int().min(0).max(0xffffffff),
});

// ---- Agent to server -------------------------------------------------------------------------

export const dockerCapabilitySchema = z.object({
  version: z.string(),
  apiVersion: z.string(),
  os: z.string(),
  arch: z.string(),
  imageMounts: z.boolean(),
});

export const helloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  agent: z.object({ id: z.string().min(1), name: z.string(), version: z.string() }),
  capacity: z.number().int().min(1),
  capabilities: z.object({
    docker: dockerCapabilitySchema.nullable(),
    hostExecution: z.boolean(),
    shells: z.array(z.string()),
    tools: z.array(z.object({ name: z.string(), version: z.string() })).default([]),
  }),
  tasks: z
    .array(
      z.object({ taskId: taskIdSchema, lastSeq: z.number().int().min(0), finished: z.boolean() }),
    )
    .default([]),
});

export const acceptedSchema = z.object({ type: z.literal('accepted'), taskId: taskIdSchema });
export const rejectedSchema = z.object({
  type: z.literal('rejected'),
  taskId: taskIdSchema,
  code: z.enum(['invalid-task', 'draining']),
  message: z.string(),
});
export const blobRequestSchema = z.object({
  type: z.literal('blob-request'),
  sha256: sha256Schema,
});
export const drainedSchema = z.object({ type: z.literal('drained') });

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
  type: z.literal('event'),
  taskId: taskIdSchema,
  seq: seqSchema,
  time: z.string(),
};

export const stateEventSchema = z.object({
  ...eventBase,
  kind: z.literal('state'),
  state: z.enum(TASK_STATES),
});
export const logEventSchema = z.object({
  ...eventBase,
  kind: z.literal('log'),
  stream: z.enum(LOG_STREAMS),
  level: z.enum(LOG_LEVELS),
  lines: z.array(z.string()),
  partial: z.boolean().optional(),
});
export const progressEventSchema = z.object({
  ...eventBase,
  kind: z.literal('progress'),
  activity: z.enum(['pull', 'build', 'transfer', 'script']),
  message: z.string(),
  percent: z.number().min(0).max(100).optional(),
});
export const variableEventSchema = z.object({
  ...eventBase,
  kind: z.literal('variable'),
  name: z.string(),
  value: z.string(),
  sensitive: z.boolean(),
});
export const artifactEventSchema = z.object({
  ...eventBase,
  kind: z.literal('artifact'),
  name: z.string(),
  path: z.string(),
  size: z.number().int().min(0),
  sha256: sha256Schema,
});
export const resultEventSchema = z.object({
  ...eventBase,
  kind: z.literal('result'),
  outcome: z.enum(OUTCOMES),
  exitCode: z.number().int().nullable(),
  error: z.object({ code: errorCodeSchema, message: z.string() }).optional(),
  durationMs: z.number().min(0),
});

export const eventSchema = z.discriminatedUnion('kind', [
  stateEventSchema,
  logEventSchema,
  progressEventSchema,
  variableEventSchema,
  artifactEventSchema,
  resultEventSchema,
]);

export const serverMessageSchema = z.discriminatedUnion('type', [
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

export const agentMessageSchema = z.discriminatedUnion('type', [
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

export type Welcome = z.output<typeof welcomeSchema>;
export type Task = z.output<typeof taskSchema>;
export type TaskInput = z.input<typeof taskSchema>;
export type TaskVariable = z.output<typeof variableSchema>;
export type ContainerSpec = z.output<typeof containerSchema>;
export type PullPolicy = z.output<typeof pullPolicySchema>;
export type GitSource = z.output<typeof gitSourceSchema>;
export type PackageRef = z.output<typeof packageSchema>;
export type ToolRef = z.output<typeof toolSchema>;
export type Cancel = z.output<typeof cancelSchema>;
export type Ack = z.output<typeof ackSchema>;
export type Drain = z.output<typeof drainSchema>;
export type ErrorMessage = z.output<typeof errorMessageSchema>;
export type BlobBegin = z.output<typeof blobBeginSchema>;
export type BlobEnd = z.output<typeof blobEndSchema>;
export type BlobMissing = z.output<typeof blobMissingSchema>;
export type BlobRequest = z.output<typeof blobRequestSchema>;
export type Hello = z.output<typeof helloSchema>;
export type DockerCapability = z.output<typeof dockerCapabilitySchema>;
export type Accepted = z.output<typeof acceptedSchema>;
export type Rejected = z.output<typeof rejectedSchema>;
export type Drained = z.output<typeof drainedSchema>;
export type TaskEvent = z.output<typeof eventSchema>;
export type StateEvent = z.output<typeof stateEventSchema>;
export type LogEvent = z.output<typeof logEventSchema>;
export type ProgressEvent = z.output<typeof progressEventSchema>;
export type VariableEvent = z.output<typeof variableEventSchema>;
export type ArtifactEvent = z.output<typeof artifactEventSchema>;
export type ResultEvent = z.output<typeof resultEventSchema>;
export type TaskState = (typeof TASK_STATES)[number];
export type LogStream = (typeof LOG_STREAMS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Outcome = (typeof OUTCOMES)[number];
export type ServerMessage = z.output<typeof serverMessageSchema>;
export type AgentMessage = z.output<typeof agentMessageSchema>;

/** An event's payload before the journal gives it `taskId`, `seq` and `time`. */
type WithoutEnvelope<T> = T extends unknown ? Omit<T, 'type' | 'taskId' | 'seq' | 'time'> : never;
export type EventBody = WithoutEnvelope<TaskEvent>;
