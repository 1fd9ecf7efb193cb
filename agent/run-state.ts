/**
 * What a restarted agent needs to take a step over: `RunInfo` (its container and folder, written
 * before the step starts) and `OutputCheckpoint` (how far its output was journalled, written with
 * each event). Both are read back from the journal and validated here.
 */
import * as v from 'valibot';
import { ERROR_CODES, LOG_LEVELS, OUTCOMES } from '../protocol/index.js';

const nonEmpty = v.pipe(v.string(), v.minLength(1));
const finite = v.pipe(v.number(), v.finite());
const byteCount = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

/**
 * How the step ended, written before its cleanup: an agent that restarts during the cleanup
 * (a container or folder removal can take seconds) reports this, not an unknown outcome.
 */
const endedSchema = v.object({
  outcome: v.picklist(OUTCOMES),
  exitCode: v.nullable(v.pipe(v.number(), v.safeInteger())),
  /** For outcome `error`: the result's error, already masked. */
  error: v.optional(v.object({ code: v.picklist(ERROR_CODES), message: v.string() })),
});
export type StepEnded = v.InferOutput<typeof endedSchema>;

export const runInfoSchema = v.variant('kind', [
  v.object({
    kind: v.literal('container'),
    containerId: nonEmpty,
    workFolder: nonEmpty,
    image: nonEmpty,
    /** When the task left the queue (its timeout counts from there). */
    preparedAt: finite,
    /**
     * The worker folders the step's options mounted, as checked when it started: a restarted
     * agent collects artifacts from them without translating the options again (their files,
     * such as an --env-file, may be gone by then).
     */
    mounts: v.optional(v.array(v.object({ hostPath: nonEmpty, containerPath: nonEmpty }))),
    ended: v.optional(endedSchema),
  }),
  v.object({
    kind: v.literal('host'),
    workFolder: nonEmpty,
    preparedAt: finite,
    ended: v.optional(endedSchema),
  }),
]);
export type RunInfo = v.InferOutput<typeof runInfoSchema>;

export const outputCheckpointSchema = v.object({
  /** Bytes of the stdout and stderr files whose lines are in the journal. */
  out: byteCount,
  err: byteCount,
  /** A long line of this stream was sent in part; its rest comes first. */
  open: v.optional(v.picklist(['stdout', 'stderr'])),
  level: v.optional(v.picklist(LOG_LEVELS)),
  marks: v.optional(v.array(v.object({ path: v.string(), name: v.string() }))),
  /** How many of `marks` were collected (in order), so none is reported twice. */
  collected: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
});
export type OutputCheckpoint = v.InferOutput<typeof outputCheckpointSchema>;

export function parseRunInfo(value: unknown): RunInfo | undefined {
  const parsed = v.safeParse(runInfoSchema, value);
  return parsed.success ? parsed.output : undefined;
}

export function parseCheckpoint(value: unknown): OutputCheckpoint | undefined {
  const parsed = v.safeParse(outputCheckpointSchema, value);
  return parsed.success ? parsed.output : undefined;
}
