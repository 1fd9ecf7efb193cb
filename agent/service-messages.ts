/**
 * Calamari-compatible service messages on a step's stdout: `##octopus[name key='base64' ...]`.
 * Parsing is strict about the frame and lenient about what it does not know: an unknown or
 * malformed message becomes a warning for the step's log, never an exception.
 */

export interface ServiceMessage {
  name: string;
  attributes: Map<string, string>;
}

export type ParsedLine =
  | { kind: 'text' }
  | { kind: 'message'; message: ServiceMessage }
  | { kind: 'broken'; reason: string };

export const SERVICE_MESSAGE_PREFIX = '##octopus[';
const FRAME = /^##octopus\[([A-Za-z][\w-]*)((?:\s+[A-Za-z][\w-]*='[^']*')*)\s*\]\s*$/;
const ATTRIBUTE = /([A-Za-z][\w-]*)='([^']*)'/g;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function parseServiceMessage(line: string): ParsedLine {
  if (!line.startsWith(SERVICE_MESSAGE_PREFIX)) return { kind: 'text' };
  const frame = FRAME.exec(line);
  if (frame === null || frame[1] === undefined) {
    return { kind: 'broken', reason: `not of the form ##octopus[name key='base64' ...]` };
  }
  const attributes = new Map<string, string>();
  for (const match of (frame[2] ?? '').matchAll(ATTRIBUTE)) {
    const [, key, encoded] = match;
    if (key === undefined || encoded === undefined) continue;
    if (!BASE64.test(encoded)) {
      return { kind: 'broken', reason: `the value of ${key} in ${frame[1]} is not valid base64` };
    }
    const bytes = Buffer.from(encoded, 'base64');
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    attributes.set(key, text);
  }
  return { kind: 'message', message: { name: frame[1], attributes } };
}
