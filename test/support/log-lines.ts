import type { JournalInput } from '../../workspace/index.js';

/**
 * The lines of a log event as the agent hands it to the journal: a `log` body's lines, or a
 * `log-text` body's text split as the journal encodes it. Undefined for other events.
 */
export function logLines(body: JournalInput): string[] | undefined {
  if (body.kind === 'log') return body.lines;
  if (body.kind === 'log-text') return body.text.split('\n');
  return undefined;
}
