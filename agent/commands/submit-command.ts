/** `cuttle submit FILE --follow`: sends a task to a reference server's HTTP API and follows it. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as v from 'valibot';
import { withFlagErrors } from '../parse-flags.js';
import { CuttleError, eventSchema } from '../../protocol/index.js';
import { formatEvent } from '../event-printer.js';

const FLAGS = {
  server: { type: 'string', default: 'http://127.0.0.1:8484' },
  token: { type: 'string' },
  follow: { type: 'boolean', default: false },
} as const;

export async function submitCommand(args: string[]): Promise<number> {
  const { values, positionals } = withFlagErrors(FLAGS, () =>
    parseArgs({
      args,
      options: FLAGS,
      strict: true,
      allowPositionals: true,
    }),
  );
  const file = positionals[0];
  if (file === undefined)
    throw new CuttleError(
      'config-invalid',
      'usage: cuttle submit TASK.json [--server URL] [--token T] [--follow]',
    );
  const token = values.token ?? process.env.CUTTLE_TOKEN;
  if (token === undefined) throw new CuttleError('config-invalid', 'give --token or CUTTLE_TOKEN');
  const base = values.server.replace(/\/$/, '');
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const response = await fetch(`${base}/tasks`, {
    method: 'POST',
    headers,
    body: await readFile(file, 'utf8'),
  });
  const body = await response.text();
  if (!response.ok)
    throw new CuttleError(
      'invalid-task',
      `the server refused the task (HTTP ${response.status}): ${body}`,
    );
  const parsed: unknown = JSON.parse(body);
  const taskId =
    typeof parsed === 'object' && parsed !== null && 'taskId' in parsed
      ? String(parsed.taskId)
      : '';
  console.log(`submitted ${taskId}`);
  if (!values.follow) return 0;
  const events = await fetch(`${base}/tasks/${encodeURIComponent(taskId)}/events?follow=1`, {
    headers,
  });
  if (!events.ok || events.body === null)
    throw new CuttleError('internal', `cannot follow ${taskId}: HTTP ${events.status}`);
  let outcome = 'error';
  let pending = '';
  const decoder = new TextDecoder();
  for await (const chunk of events.body) {
    if (!(chunk instanceof Uint8Array)) continue;
    const lines = (pending + decoder.decode(chunk, { stream: true })).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines.filter((l) => l.trim() !== '')) {
      const event = v.parse(eventSchema, JSON.parse(line));
      for (const text of formatEvent(event)) console.log(text);
      if (event.kind === 'result') outcome = event.outcome;
    }
  }
  return outcome === 'success' ? 0 : 1;
}
