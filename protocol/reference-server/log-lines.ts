import type { TaskEvent } from '../messages.js';

/**
 * The text of a task's log lines, all streams in order. A line longer than 128 KiB arrives as
 * consecutive one-piece `log` events, all but the last marked `partial` (section 4); they are
 * joined back into one line here. A trailing partial piece (the rest not yet received) is shown
 * as it is.
 */
export function joinLogLines(events: readonly TaskEvent[]): string[] {
  const lines: string[] = [];
  let pending: string | undefined;
  for (const event of events) {
    if (event.kind !== 'log') continue;
    if (event.partial === true) {
      pending = (pending ?? '') + event.lines.join('');
      continue;
    }
    const [first, ...rest] = event.lines;
    if (pending !== undefined) {
      lines.push(pending + (first ?? ''));
      pending = undefined;
    } else if (first !== undefined) {
      lines.push(first);
    }
    lines.push(...rest);
  }
  if (pending !== undefined) lines.push(pending);
  return lines;
}
