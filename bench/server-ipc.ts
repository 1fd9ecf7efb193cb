/**
 * What the bench and its reference-server process (server-child.ts) say to each other over the
 * child's IPC channel. Times are absolute milliseconds (`performance.timeOrigin + now()`) taken in
 * the server process, so that a duration is measured where the server sees it, IPC latency aside.
 */
import * as v from 'valibot';
import { eventSchema } from '../protocol/index.js';

export const childConfigSchema = v.object({
  dataDir: v.string(),
  port: v.number(),
  token: v.string(),
  heartbeatMs: v.optional(v.number()),
});
export type ServerChildConfig = v.InferOutput<typeof childConfigSchema>;

/** Bench → server process. `id` pairs a request with its reply. */
export const requestSchema = v.variant('op', [
  v.object({
    op: v.literal('submit'),
    id: v.number(),
    input: v.unknown(),
    /** Log lines this long are counted, not forwarded (a busy log's 5 million lines). */
    usualLineLength: v.optional(v.number()),
  }),
  v.object({ op: v.literal('add-blob'), id: v.number(), path: v.string() }),
  v.object({ op: v.literal('artifact-path'), id: v.number(), sha256: v.string() }),
  v.object({ op: v.literal('disconnect-all'), id: v.number() }),
  v.object({ op: v.literal('close'), id: v.number() }),
]);
export type ServerRequest = v.InferOutput<typeof requestSchema>;
/** A request as the bench writes it: the reply's `id` is added when it is sent. */
export type ServerRequestBody = ServerRequest extends infer R
  ? R extends ServerRequest
    ? Omit<R, 'id'>
    : never
  : never;

const forwardedLogSchema = v.object({
  type: v.literal('log'),
  taskId: v.string(),
  at: v.number(),
  stream: v.string(),
  /** Lines in the event, forwarded or not, and their bytes with a line end each. */
  lineCount: v.number(),
  bytes: v.number(),
  lines: v.array(v.string()),
});

/** Server process → bench. */
export const noticeSchema = v.variant('type', [
  v.object({ type: v.literal('listening'), url: v.string(), at: v.number() }),
  v.object({
    type: v.literal('reply'),
    id: v.number(),
    at: v.number(),
    value: v.optional(v.unknown()),
    error: v.optional(v.string()),
  }),
  v.object({ type: v.literal('hello'), at: v.number() }),
  v.object({ type: v.literal('blob-request'), sha256: v.string() }),
  /** The agent announced a blob (an artifact): its hash pass is over, its transfer starts. */
  v.object({ type: v.literal('blob-begin'), sha256: v.string(), at: v.number() }),
  v.object({ type: v.literal('status'), taskId: v.string(), status: v.string(), at: v.number() }),
  v.object({ type: v.literal('event'), taskId: v.string(), at: v.number(), event: eventSchema }),
  forwardedLogSchema,
]);
export type ServerNotice = v.InferOutput<typeof noticeSchema>;
export type ForwardedLog = v.InferOutput<typeof forwardedLogSchema>;

/** This process's clock in absolute milliseconds, comparable across processes. */
export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}
