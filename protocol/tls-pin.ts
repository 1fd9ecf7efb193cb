/**
 * Certificate pinning: the server's certificate is trusted when the SHA-256 of its DER encoding
 * equals a configured fingerprint (PROTOCOL.md section 1). Fingerprints are compared as lower-case
 * hex and shown the way `openssl x509 -fingerprint -sha256` and Node print them (AB:CD:…).
 */
import { createHash } from 'node:crypto';
import { CuttleError } from './errors.js';

const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** A configured pin ("AB:CD:…", "abcd…", any case) as 64 lower-case hex digits. */
export function parseCertificatePin(pin: string): string {
  const hex = pin.trim().replace(/:/g, '').toLowerCase();
  if (!HEX_SHA256.test(hex)) {
    throw new CuttleError(
      'config-invalid',
      `certSha256 must be a SHA-256 fingerprint: 64 hex digits, colons optional (got "${pin}")`,
    );
  }
  return hex;
}

/** SHA-256 of a certificate's DER encoding, as 64 lower-case hex digits. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** 64 hex digits as upper-case colon-separated pairs. */
export function formatFingerprint(hex: string): string {
  return (hex.toUpperCase().match(/../g) ?? []).join(':');
}

/** The server presented a certificate other than the pinned one. */
export class CertificateMismatchError extends CuttleError {
  readonly expected: string;
  /** Undefined when the server presented no certificate at all. */
  readonly actual: string | undefined;

  constructor(expected: string, actual: string | undefined) {
    const shown = actual === undefined ? '(none presented)' : formatFingerprint(actual);
    super(
      'certificate-mismatch',
      `the server's certificate has SHA-256 fingerprint ${shown}, ` +
        `but certSha256 pins ${formatFingerprint(expected)}: refusing to connect`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** Undefined when `der` matches the pin, otherwise the error that refuses the connection. */
export function checkCertificatePin(
  expected: string,
  der: Uint8Array | undefined,
): CertificateMismatchError | undefined {
  const actual =
    der === undefined || der.byteLength === 0 ? undefined : certificateFingerprint(der);
  return actual === expected ? undefined : new CertificateMismatchError(expected, actual);
}
