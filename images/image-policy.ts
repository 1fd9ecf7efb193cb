import { ImageForbiddenError } from './docker-errors.js';

export type PullPolicy = 'always' | 'if-not-present' | 'never';

export const PULL_POLICIES: readonly PullPolicy[] = ['always', 'if-not-present', 'never'];

/** What the worker's configuration allows (PROTOCOL.md section 3, `image-forbidden`). */
export interface ImagePolicy {
  /**
   * Glob patterns over image references (`*` within one path segment, `**` across segments, `?`
   * one character); a pattern starting with `!` excludes. Empty: every image is allowed.
   */
  allowedImages: string[];
  /** Empty: every pull policy is allowed. */
  allowedPullPolicies: PullPolicy[];
}

export const OPEN_IMAGE_POLICY: ImagePolicy = { allowedImages: [], allowedPullPolicies: [] };

const DEFAULT_DOMAIN = 'docker.io';

/**
 * The forms a reference is known by, so `debian`, `debian:latest`, `docker.io/library/debian` and
 * `docker.io/library/debian:latest` all match the same patterns: as written, with the default tag,
 * short (Docker Hub's familiar form) and fully qualified.
 */
export function imageRefForms(ref: string): string[] {
  const at = ref.indexOf('@');
  const namePart = at >= 0 ? ref.slice(0, at) : ref;
  const digest = at >= 0 ? ref.slice(at) : '';
  const lastSlash = namePart.lastIndexOf('/');
  const colon = namePart.indexOf(':', lastSlash + 1);
  const name = colon >= 0 ? namePart.slice(0, colon) : namePart;
  const tag = colon >= 0 ? namePart.slice(colon) : digest === '' ? ':latest' : '';
  const firstSlash = name.indexOf('/');
  const first = firstSlash >= 0 ? name.slice(0, firstSlash) : '';
  const hasDomain =
    firstSlash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let domain = hasDomain ? first : DEFAULT_DOMAIN;
  let path = hasDomain ? name.slice(firstSlash + 1) : name;
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  const full = `${domain}/${path}${tag}${digest}`;
  const familiar =
    domain === DEFAULT_DOMAIN
      ? `${path.startsWith('library/') ? path.slice('library/'.length) : path}${tag}${digest}`
      : full;
  return [...new Set([ref, `${name}${tag}${digest}`, familiar, full])];
}

/** A glob pattern as a regular expression over a whole reference. */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index] ?? '';
    if (char === '*' && pattern[index + 1] === '*') {
      source += '.*';
      index += 1;
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/**
 * Whether the patterns allow the image: one include pattern (or none at all) matches one of its
 * forms, and no exclusion matches any of them. Exclusions win, whatever their order.
 */
export function isImageAllowed(patterns: readonly string[], ref: string): boolean {
  if (patterns.length === 0) return true;
  const forms = imageRefForms(ref);
  const includes = patterns.filter((pattern) => !pattern.startsWith('!'));
  const excludes = patterns
    .filter((pattern) => pattern.startsWith('!'))
    .map((pattern) => pattern.slice(1));
  const matches = (pattern: string): boolean => {
    const regexp = globToRegExp(pattern);
    return forms.some((form) => regexp.test(form));
  };
  if (excludes.some(matches)) return false;
  return includes.length === 0 || includes.some(matches);
}

/** Throws image-forbidden, naming the setting, when the image or its pull policy is not allowed. */
export function checkImagePolicy(policy: ImagePolicy, ref: string, pullPolicy: PullPolicy): void {
  if (!isImageAllowed(policy.allowedImages, ref)) {
    throw new ImageForbiddenError(
      ref,
      'allowedImages',
      `the image ${ref} is not allowed on this worker: it does not match the agent configuration's allowedImages (${policy.allowedImages.join(', ')}); use an allowed image, or ask the worker's administrator to add it`,
    );
  }
  if (policy.allowedPullPolicies.length > 0 && !policy.allowedPullPolicies.includes(pullPolicy)) {
    throw new ImageForbiddenError(
      ref,
      'allowedPullPolicies',
      `the pull policy "${pullPolicy}" is not allowed on this worker: the agent configuration's allowedPullPolicies is ${policy.allowedPullPolicies.join(', ')}; set the step's pullPolicy to one of those`,
    );
  }
}
