/**
 * Keepalive for one connection (PROTOCOL.md section 1): ping every period, and declare the peer
 * dead after 2 periods without any sign of life. It is started only once the socket is open, so a
 * slow connect is never mistaken for a dead peer (that is the connect timeout's job).
 */
export interface HeartbeatHandlers {
  ping: () => void;
  dead: (silentMs: number) => void;
}

export class Heartbeat {
  readonly #handlers: HeartbeatHandlers;
  #interval: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;

  constructor(handlers: HeartbeatHandlers) {
    this.#handlers = handlers;
  }

  /** (Re)starts with a period, e.g. the default on open and the server's `heartbeatMs` on welcome. */
  start(periodMs: number): void {
    this.stop();
    const silentMs = 2 * periodMs;
    this.#interval = setInterval(() => this.#handlers.ping(), periodMs);
    this.#deadline = setTimeout(() => {
      this.stop();
      this.#handlers.dead(silentMs);
    }, silentMs);
  }

  /** Any frame, ping or pong from the peer. */
  alive(): void {
    this.#deadline?.refresh();
  }

  stop(): void {
    clearInterval(this.#interval);
    clearTimeout(this.#deadline);
    this.#interval = undefined;
    this.#deadline = undefined;
  }
}
