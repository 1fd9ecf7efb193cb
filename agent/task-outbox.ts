/**
 * Sends one task's journal to the server with flow control: at most 512 events or 8 MiB in flight
 * without an ack (PROTOCOL.md section 4). Events are read back from the journal on disk, so the
 * agent's memory does not grow with a slow or absent server; only the journal on disk does, up to a
 * limit past which the step's output is paused (never dropped).
 */
import * as v from 'valibot';
import { Backoff } from '../protocol/backoff.js';
import { eventSchema, MAX_UNACKED_BYTES, MAX_UNACKED_EVENTS } from '../protocol/index.js';
import type { TaskJournal } from '../workspace/index.js';

/** What the outbox needs of the connection. */
export interface EventChannel {
  readonly connected: boolean;
  /** A text frame from the journal's bytes (UTF-8 JSON), sent as they are. */
  sendText(text: Buffer): Promise<void>;
  /** Streams a file as a blob (PROTOCOL.md section 6). */
  sendBlob(path: string, sha256: string, size: number): Promise<void>;
}

export interface OutboxLimits {
  maxEvents: number;
  maxBytes: number;
  /** Unacknowledged bytes in the journal past which producers wait. */
  journalLimitBytes: number;
  /**
   * While connected, bytes journalled but not yet sent past which producers wait: the journal
   * keeps its newest events in memory (8 MiB), and an event that fell out of them is read back
   * from disk, a copy and a thread-pool round trip each. Producers racing ahead gain nothing:
   * the output waits in the step's output file instead.
   */
  maxUnsentBytes: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = {
  maxEvents: MAX_UNACKED_EVENTS,
  maxBytes: MAX_UNACKED_BYTES,
  journalLimitBytes: 1024 * 1024 * 1024,
  maxUnsentBytes: 4 * 1024 * 1024,
};

export class TaskOutbox {
  readonly journal: TaskJournal;
  readonly #channel: EventChannel;
  readonly #limits: OutboxLimits;
  readonly #onError: (error: unknown) => void;
  #acked = 0;
  #next = 1;
  #inFlightBytes = 0;
  /** True once the server resumed (or was given) this task on the current connection. */
  #live = false;
  /**
   * Counts resumes and disconnects: a send loop that awaited across one belongs to an earlier
   * connection, and must not send what it read on the current one.
   */
  #connectionRound = 0;
  #pumping = false;
  /** pump() was called while a send loop ran: run it once more when it ends. */
  #again = false;
  #roomWaiters: (() => void)[] = [];
  /** After a send failed with the connection up: pauses (0.5 s doubling to 30 s) and the timer. */
  readonly #retryBackoff = new Backoff();
  #failing = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    journal: TaskJournal,
    channel: EventChannel,
    onError: (error: unknown) => void,
    limits: OutboxLimits = DEFAULT_OUTBOX_LIMITS,
  ) {
    this.journal = journal;
    // Compaction drops only acknowledged events: for a journal loaded after a restart they are
    // the acks the agent still knows of, and a resume below them restarts at the first held.
    this.#acked = journal.compactedSeq;
    this.#next = this.#acked + 1;
    this.#onError = onError;
    this.#channel = channel;
    this.#limits = limits;
  }

  get ackedSeq(): number {
    return this.#acked;
  }

  /** The result is in the journal and acknowledged: the task can be forgotten. */
  get complete(): boolean {
    return this.journal.finished && this.#acked >= this.journal.lastSeq;
  }

  /** Start (or restart, after a reconnect) sending from `fromSeq`. */
  resume(fromSeq: number): void {
    this.#acked = Math.max(this.#acked, Math.min(fromSeq - 1, this.journal.lastSeq));
    this.#next = this.#acked + 1;
    this.#inFlightBytes = 0;
    this.#live = true;
    this.#connectionRound += 1;
    this.#wakeProducers();
    this.pump();
  }

  disconnected(): void {
    this.#live = false;
    this.#connectionRound += 1;
    this.#wakeProducers();
    clearTimeout(this.#retry);
    this.#failing = false;
    this.#retryBackoff.reset();
  }

  /** A cumulative ack. Returns true when it completed the task. */
  ack(seq: number): boolean {
    const upTo = Math.min(seq, this.#next - 1);
    if (upTo > this.#acked) {
      for (let s = this.#acked + 1; s <= upTo; s++) this.#inFlightBytes -= this.journal.sizeOf(s);
      this.#acked = upTo;
      this.#wakeProducers();
      // Acknowledged events leave the journal once they are most of it.
      this.journal.compact(upTo).catch((error: unknown) => this.#onError(error));
      this.pump();
    }
    return this.complete;
  }

  /** New events are in the journal. */
  pump(): void {
    if (!this.#live) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#again = false;
    void this.#send().finally(() => {
      this.#pumping = false;
      if (this.#again) this.pump();
    });
  }

  /**
   * Resolves when the journal holds less unacknowledged output than its limit and, while events
   * flow, less unsent output than `maxUnsentBytes`.
   */
  async room(): Promise<void> {
    while (
      this.journal.bytesAfter(this.#acked) >= this.#limits.journalLimitBytes ||
      (this.#live &&
        this.#channel.connected &&
        this.journal.bytesAfter(this.#next - 1) >= this.#limits.maxUnsentBytes)
    ) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  async #send(): Promise<void> {
    const round = this.#connectionRound;
    try {
      while (
        this.#live &&
        this.#channel.connected &&
        this.#next <= this.journal.lastSeq &&
        this.#next - this.#acked - 1 < this.#limits.maxEvents &&
        this.#inFlightBytes < this.#limits.maxBytes
      ) {
        const seq = this.#next;
        const text = await this.journal.read(seq);
        // Resumed or disconnected meanwhile: the resume's pump() restarts the loop from its fromSeq.
        if (round !== this.#connectionRound) return;
        const artifact = artifactOf(text);
        // An artifact's blob goes first, every time its event is (re-)sent (section 2).
        if (artifact !== undefined) {
          await this.#channel.sendBlob(
            this.journal.artifactPath(artifact.sha256),
            artifact.sha256,
            artifact.size,
          );
          // The event without its blob would be refused on a connection that did not get it.
          if (round !== this.#connectionRound) return;
        }
        await this.#channel.sendText(text);
        if (round !== this.#connectionRound) return;
        this.#next += 1;
        this.#inFlightBytes += this.journal.sizeOf(seq);
        if (this.#roomWaiters.length > 0) this.#wakeProducers();
      }
      this.#failing = false;
      this.#retryBackoff.reset();
    } catch (error) {
      // A failure of an earlier connection's send says nothing about the current one.
      if (round !== this.#connectionRound) return;
      // A connection that went away is expected: sending resumes from the next welcome's fromSeq.
      if (!this.#channel.connected) {
        this.#live = false;
        return;
      }
      // Anything else (the journal or an artifact could not be read) is reported once and retried
      // with a growing pause, from the same event: a task never stops sending while the
      // connection is up.
      if (!this.#failing) this.#onError(error);
      this.#failing = true;
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => this.pump(), this.#retryBackoff.next());
      this.#retry.unref();
    }
  }

  #wakeProducers(): void {
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }
}

function artifactOf(text: Buffer): { sha256: string; size: number } | undefined {
  // "kind" comes right after type, taskId, seq and time: no need to scan a whole log batch.
  if (!text.subarray(0, 400).includes('"kind":"artifact"')) return undefined;
  const parsed = v.safeParse(eventSchema, JSON.parse(text.toString('utf8')));
  return parsed.success && parsed.output.kind === 'artifact' ? parsed.output : undefined;
}
