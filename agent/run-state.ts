/**
 * What a restarted agent needs to take a step over: `RunInfo` (its container and folder, written
 * before the step starts) and `OutputCheckpoint` (how far its output was journalled, written with
 * each event). Both are read back from the journal and validated here.
 */
import { z } from 'zod';
import { LOG_LEVELS } from '../protocol/index.js';

export const runInfoSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('container'),
    containerId: z.string().min(1),
    workFolder: z.string().min(1),
    image: z.string().min(1),
    /** When the task left the queue (its timeout counts from there). */
    preparedAt: z.number(),
  }),
  z.object({ kind: z.literal('host'), workFolder: z.string().min(1), preparedAt: z.number() }),
]);
export type RunInfo = z.output<typeof runInfoSchema>;

export const outputCheckpointSchema = z.object({
  /** Bytes of the stdout and stderr files whose lines are in the journal. */
  out: z.number().int().min(0),
  err: z.number().int().min(0),
  /** A long line of this stream was sent in part; its rest comes first. */
  open: z.enum(['stdout', 'stderr']).optional(),
  level: z.enum(LOG_LEVELS).optional(),
  marks: z.array(z.object({ path: z.string(), name: z.string() })).optional(),
});
export type OutputCheckpoint = z.output<typeof outputCheckpointSchema>;

export function parseRunInfo(value: unknown): RunInfo | undefined {
  const parsed = runInfoSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

export function parseCheckpoint(value: unknown): OutputCheckpoint | undefined {
  const parsed = outputCheckpointSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
