import type { EngineMessage } from './json-message-stream.js';

interface LayerState {
  total: number | undefined;
  downloaded: number;
  extracted: number;
  done: boolean;
}

/**
 * Overall percent of a pull from its layers' byte counts: each layer weighs its size, half for the
 * download and half for the extraction. Layers whose size is not known yet do not count, so the
 * percent may step back a little when a new layer starts; it is never reported above 99 before the
 * pull has ended.
 */
export class PullProgress {
  readonly #layers = new Map<string, LayerState>();

  /** Takes one engine message; returns true when it changed something worth showing. */
  update(message: EngineMessage): boolean {
    const id = message.id;
    const status = message.status ?? '';
    if (id === undefined || !/^[0-9a-f]{12,64}$/.test(id)) return false;
    const layer = this.#layers.get(id) ?? {
      total: undefined,
      downloaded: 0,
      extracted: 0,
      done: false,
    };
    this.#layers.set(id, layer);
    const detail = message.progressDetail;
    if (status === 'Downloading' && detail !== undefined) {
      if (detail.total !== undefined && detail.total > 0) layer.total = detail.total;
      layer.downloaded = detail.current;
    } else if (status === 'Extracting' && detail !== undefined) {
      if (layer.total === undefined && detail.total !== undefined && detail.total > 0)
        layer.total = detail.total;
      layer.downloaded = layer.total ?? detail.current;
      layer.extracted = detail.current;
    } else if (status === 'Download complete' || status === 'Verifying Checksum') {
      layer.downloaded = layer.total ?? layer.downloaded;
    } else if (status === 'Pull complete' || status === 'Already exists') {
      layer.done = true;
    } else {
      return false;
    }
    return true;
  }

  /** 0–99 while layers are pulled; undefined before any layer's size is known. */
  get percent(): number | undefined {
    let total = 0;
    let progress = 0;
    let doneUnsized = 0;
    for (const layer of this.#layers.values()) {
      if (layer.total === undefined) {
        if (layer.done) doneUnsized += 1;
        continue;
      }
      total += layer.total;
      progress += layer.done
        ? layer.total
        : (Math.min(layer.downloaded, layer.total) + Math.min(layer.extracted, layer.total)) / 2;
    }
    if (total === 0) {
      const count = this.#layers.size;
      return count === 0 ? undefined : Math.min(99, Math.floor((doneUnsized / count) * 100));
    }
    return Math.min(99, Math.floor((progress / total) * 100));
  }

  /** Bytes downloaded so far, over all layers. */
  get downloadedBytes(): number {
    let bytes = 0;
    for (const layer of this.#layers.values()) bytes += layer.downloaded;
    return bytes;
  }

  get layerCount(): number {
    return this.#layers.size;
  }
}

/** Lets an event through at most once per intervalMs (the first one always). */
export class Throttle {
  #last = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  ready(): boolean {
    const now = this.now();
    if (now - this.#last < this.intervalMs) return false;
    this.#last = now;
    return true;
  }
}
