/** Prints a task's events for a person at a terminal (used by `try` and `submit --follow`). */
import type { TaskEvent } from '../protocol/index.js';

export function formatEvent(event: TaskEvent): string[] {
  switch (event.kind) {
    case 'log': {
      const prefix =
        event.stream === 'stdout' ? '  | ' : event.stream === 'stderr' ? '  ! ' : '  # ';
      const level = event.level === 'info' ? '' : `[${event.level}] `;
      return event.lines.map(
        (line) => `${prefix}${level}${line}${event.partial === true ? ' …' : ''}`,
      );
    }
    case 'state':
      return [`[${event.state}]`];
    case 'progress':
      return [
        `[progress ${event.activity}${event.percent === undefined ? '' : ` ${event.percent}%`}] ${event.message}`,
      ];
    case 'variable':
      return [`[output variable] ${event.name} = ${event.sensitive ? '********' : event.value}`];
    case 'artifact':
      return [
        `[artifact] ${event.name} (${event.size} bytes, sha256 ${event.sha256}) from ${event.path}`,
      ];
    case 'result':
      return [
        `[result] ${event.outcome}, exit code ${event.exitCode ?? 'none'}, ${event.durationMs} ms` +
          (event.error === undefined ? '' : ` — ${event.error.code}: ${event.error.message}`),
      ];
  }
}
