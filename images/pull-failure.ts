import type { PullFailureReason } from './docker-errors.js';

/** What a failed pull means: the image is missing, or the pull failed for a reason. */
export type PullFailureKind = { kind: 'not-found' } | { kind: 'failed'; reason: PullFailureReason };

// The engine passes the registry's answer on as text; these cover distribution (registry:2),
// Docker Hub, GHCR, ECR, Harbor and Go's network errors as Docker 20.10 to 27 word them.
const RATE_LIMITED = /toomanyrequests|too many requests|rate limit|\b429\b/i;
const NOT_FOUND =
  /manifest unknown|manifest for .* not found|name unknown|not found: |repository does not exist|no such image/i;
const UNAUTHORIZED =
  /unauthorized|authentication required|no basic auth credentials|incorrect username or password|access denied|denied:|forbidden/i;
const SERVER_ERROR =
  /unexpected HTTP status: 5\d\d|\b5\d\d (internal server error|bad gateway|service unavailable|gateway time-?out)|status(?: code)?:? 5\d\d/i;
const UNREACHABLE =
  /connection refused|no such host|i\/o timeout|timeout|timed out|network is unreachable|no route to host|connection reset|broken pipe|unexpected EOF|server misbehaving|temporary failure in name resolution|dial tcp|TLS handshake|\bEOF\b/i;

/**
 * Tells a failed pull's cause from the engine's message (and the HTTP status the engine answered
 * with, when the failure came before the stream: 404 means the manifest is not there).
 */
export function classifyPullFailure(message: string, status?: number): PullFailureKind {
  if (RATE_LIMITED.test(message)) return { kind: 'failed', reason: 'rate-limited' };
  // Docker Hub says "pull access denied ... does not exist or may require 'docker login'" for
  // both a missing and a private repository; without credentials that is most often a typo.
  if (/pull access denied/i.test(message)) return { kind: 'not-found' };
  if (status === 404 || NOT_FOUND.test(message)) return { kind: 'not-found' };
  if (UNAUTHORIZED.test(message)) return { kind: 'failed', reason: 'unauthorized' };
  if (SERVER_ERROR.test(message)) return { kind: 'failed', reason: 'server-error' };
  if (UNREACHABLE.test(message)) return { kind: 'failed', reason: 'unreachable' };
  return { kind: 'failed', reason: 'other' };
}

/** A sentence a user can act on, for each reason. */
export function pullFailureAdvice(reason: PullFailureReason, withCredentials: boolean): string {
  switch (reason) {
    case 'unauthorized':
      return withCredentials
        ? 'the registry refused the feed credentials: check the feed username and password'
        : 'the registry requires credentials: give the container a feed with a username and password';
    case 'unreachable':
      return "the registry could not be reached: check the worker's network access to it";
    case 'server-error':
      return 'the registry answered with a server error: try again later';
    case 'rate-limited':
      return 'the registry is rate-limiting this worker: try again later, or pull with credentials (or from a mirror) that have a higher limit';
    case 'other':
      return 'see the registry message above';
  }
}
