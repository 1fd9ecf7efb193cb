/** The outboxes' view of the connection: text frames as journalled, and blobs with numbered transfers. */
import { sendBlob, type AgentConnection } from '../protocol/index.js';
import type { EventChannel } from './task-outbox.js';

export class ServerChannel implements EventChannel {
  readonly #connection: AgentConnection;
  #transfer = 0;

  constructor(connection: AgentConnection) {
    this.#connection = connection;
  }

  get connected(): boolean {
    return this.#connection.connected;
  }

  sendText(text: Buffer): Promise<void> {
    return this.#connection.sendText(text);
  }

  async sendBlob(path: string, sha256: string, size: number): Promise<void> {
    this.#transfer = (this.#transfer + 1) % 0x100000000;
    await sendBlob({
      transfer: this.#transfer,
      path,
      sha256,
      size,
      sendText: (message) => this.#connection.sendAsync(message),
      sendBinary: (frame) => this.#connection.sendBinaryInPlace(frame),
    });
  }
}
