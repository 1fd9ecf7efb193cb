import { StringDecoder } from 'node:string_decoder';

/** One line of the engine's streamed JSON progress (build and pull). */
export interface EngineMessage {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  /** Byte counts of a layer's download or extraction (pull), when the engine knows them. */
  progressDetail?: { current: number; total?: number };
  /** Side results: the pushed or pulled digest (`Digest`), a built image's `ID`. */
  aux?: { digest?: string; id?: string; size?: number };
}

function numberField(value: object, key: string): number | undefined {
  const field: unknown = Reflect.get(value, key);
  return typeof field === 'number' && Number.isFinite(field) ? field : undefined;
}

function toEngineMessage(value: unknown): EngineMessage {
  if (typeof value !== 'object' || value === null) return {};
  const message: EngineMessage = {};
  for (const key of ['stream', 'status', 'progress', 'id', 'error'] as const) {
    const field: unknown = Reflect.get(value, key);
    if (typeof field === 'string') message[key] = field;
  }
  const detail: unknown = Reflect.get(value, 'errorDetail');
  if (typeof detail === 'object' && detail !== null) {
    const text: unknown = Reflect.get(detail, 'message');
    if (typeof text === 'string') message.errorDetail = { message: text };
  }
  const progress: unknown = Reflect.get(value, 'progressDetail');
  if (typeof progress === 'object' && progress !== null) {
    const current = numberField(progress, 'current');
    const total = numberField(progress, 'total');
    if (current !== undefined) {
      message.progressDetail = total === undefined ? { current } : { current, total };
    }
  }
  const aux: unknown = Reflect.get(value, 'aux');
  if (typeof aux === 'object' && aux !== null) {
    const digest: unknown = Reflect.get(aux, 'Digest');
    const id: unknown = Reflect.get(aux, 'ID');
    const size = numberField(aux, 'Size');
    message.aux = {
      ...(typeof digest === 'string' ? { digest } : {}),
      ...(typeof id === 'string' ? { id } : {}),
      ...(size === undefined ? {} : { size }),
    };
  }
  return message;
}

/**
 * Reads newline-delimited JSON until the stream ends. The engine reports a failed build or pull as
 * an `error` message inside an HTTP 200 stream, so the caller must look at every message.
 */
export async function readEngineMessages(
  stream: NodeJS.ReadableStream,
  onMessage: (message: EngineMessage) => void,
): Promise<void> {
  // A chunk may end inside a multi-byte character.
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  const flush = (line: string): void => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      // Not JSON (old engines, proxies): keep the text rather than lose it.
      parsed = { stream: `${trimmed}\n` };
    }
    onMessage(toEngineMessage(parsed));
  };
  for await (const chunk of stream) {
    buffer += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      flush(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  }
  flush(buffer + decoder.end());
}

/** Turns `stream` text fragments into whole lines (a fragment may hold several, or half of one). */
export class LineSplitter {
  #pending = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(text: string): void {
    const parts = (this.#pending + text).split(/\r?\n/);
    this.#pending = parts.pop() ?? '';
    for (const line of parts) this.onLine(line);
  }

  end(): void {
    if (this.#pending !== '') this.onLine(this.#pending);
    this.#pending = '';
  }
}
