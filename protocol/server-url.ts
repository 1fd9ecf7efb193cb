/**
 * Validates the server URL the agent dials. Plain `ws://` would send the agent token in clear, so
 * it is allowed only to a loopback host or when explicitly configured (PROTOCOL.md section 1).
 */
import { isIPv4 } from 'node:net';
import { CuttleError } from './errors.js';

/** localhost, 127.0.0.0/8 and ::1. Hostnames as the WHATWG URL parser normalises them. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host === 'localhost.') return true;
  if (host === '::1') return true;
  return isIPv4(host) && host.split('.')[0] === '127';
}

/** Parses and checks the URL; throws `config-invalid` or `insecure-transport`. */
export function parseServerUrl(url: string, allowInsecure: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new CuttleError(
      'config-invalid',
      `server URL "${url}" is not a valid URL (expected wss://host:port/path)`,
      { cause: error },
    );
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new CuttleError(
      'config-invalid',
      `server URL "${url}" must start with wss:// (or ws:// to a loopback host)`,
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // Credentials in a URL end up in logs; the token has its own setting.
    throw new CuttleError(
      'config-invalid',
      `server URL "${parsed.host}" must not contain credentials: configure the token instead`,
    );
  }
  if (parsed.hash !== '') {
    throw new CuttleError('config-invalid', `server URL "${url}" must not contain a #fragment`);
  }
  if (parsed.protocol === 'ws:' && !allowInsecure && !isLoopbackHost(parsed.hostname)) {
    throw new CuttleError(
      'insecure-transport',
      `refusing to send the agent token in clear text to ${parsed.host}: use wss://, ` +
        'or allow insecure connections explicitly',
    );
  }
  return parsed;
}
