/**
 * `HOST:PORT` listening addresses (`--metrics-listen`). Kept apart from the server so the
 * configuration schema can validate with it without importing an HTTP server.
 */
import { isIP } from 'node:net';
import { CuttleError } from '../protocol/index.js';

export interface ListenAddress {
  /** An IPv4 or IPv6 literal (no brackets) or a host name. */
  host: string;
  /** 0 picks a free port (the server's `url` tells which). */
  port: number;
}

export const LISTEN_ADDRESS_HINT =
  'HOST:PORT, e.g. 127.0.0.1:9464, [::1]:9464, or 0.0.0.0:9464 to listen on every interface';

/**
 * Parses `HOST:PORT` or `[IPv6]:PORT`. The host is required: exposing metrics beyond this machine
 * is the operator's explicit choice (`0.0.0.0:PORT`), never a default.
 */
export function parseListenAddress(text: string, name = '--metrics-listen'): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim());
  const invalid = (why: string): CuttleError =>
    new CuttleError('config-invalid', `${name}: "${text}" ${why}; give ${LISTEN_ADDRESS_HINT}`);
  if (match === null) throw invalid('is not HOST:PORT');
  const [, v6, other, portText] = match;
  const port = Number(portText);
  if (!Number.isInteger(port) || port > 65535) throw invalid('has no valid port (0-65535)');
  if (v6 !== undefined) {
    if (isIP(v6) !== 6) throw invalid('has an invalid IPv6 address in brackets');
    return { host: v6, port };
  }
  const host = other ?? '';
  if (/^[\d.]+$/.test(host) && isIP(host) !== 4) throw invalid('has an invalid IPv4 address');
  if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9-]+)*$/.test(host))
    throw invalid('has an invalid host name');
  return { host, port };
}

/** For a schema check: true when `parseListenAddress` accepts the text. */
export function isListenAddress(text: string): boolean {
  try {
    parseListenAddress(text);
    return true;
  } catch {
    return false;
  }
}

/** `http://HOST:PORT` with IPv6 literals in brackets. */
export function httpUrl(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
