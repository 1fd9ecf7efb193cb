import { execFile } from 'node:child_process';
import { ImageBuildFailedError } from './docker-errors.js';

export interface GitSource {
  url: string;
  /** A branch, a tag or a full commit id; default: the repository's default branch. */
  ref?: string;
  /** Relative to `context`; default `Dockerfile`. */
  dockerfile: string;
  /** A folder of the repository; default its root. */
  context: string;
}

const GIT_TIMEOUT_MS = 60_000;
const COMMIT_ID = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;
export const MASK = '********';

/**
 * The secrets a Git URL carries, to be masked everywhere: the password of `user:password@`, or the
 * user part alone when it has no password (a token used as the user name), and the values of its
 * query string (`?private_token=…`). Each as written and percent-decoded.
 */
export function gitUrlSecrets(url: string): string[] {
  const secrets: string[] = [];
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^@/?#]*)@/i.exec(url)?.[1];
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    secrets.push(colon >= 0 ? userinfo.slice(colon + 1) : userinfo);
  }
  for (const [, value] of queryParameters(url)) secrets.push(value);
  return [...new Set(secrets.flatMap((secret) => [secret, safeDecode(secret)]))].filter(
    (value) => value !== '',
  );
}

/** The URL without its credentials (user info, query values), for labels, logs and messages. */
export function redactGitUrl(url: string): string {
  const withoutUserinfo = url.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i,
    (_all, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return colon >= 0 ? `${scheme}${info.slice(0, colon)}:${MASK}@` : `${scheme}${MASK}@`;
    },
  );
  return withoutUserinfo.replace(/\?[^#]*/, (query) =>
    query.replace(
      /([?&])([^=&]*=)?([^&]*)/g,
      (part, separator: string, name: string | undefined, value: string) =>
        value === '' ? part : `${separator}${name ?? ''}${MASK}`,
    ),
  );
}

/** `[name, value]` of each `name=value` (or bare `value`) between `?` and `#`. */
function queryParameters(url: string): [string, string][] {
  const query = /\?([^#]*)/.exec(url)?.[1];
  if (query === undefined || query === '') return [];
  return query.split('&').map((part): [string, string] => {
    const equals = part.indexOf('=');
    return equals >= 0 ? [part.slice(0, equals), part.slice(equals + 1)] : ['', part];
  });
}

/** Replaces each secret in the text by the mask. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let masked = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret !== '') masked = masked.split(secret).join(MASK);
  }
  return masked;
}

const ACCEPTED_FORMS =
  'use git://…, git@host:path, or an http(s) URL whose path ends in .git (lower case, no query string)';

/**
 * Checks a Git URL (without its fragment) as the engine's classic builder tells a Git remote from a
 * file to download (moby's urlutil.IsGitURL, case-sensitive, on the whole remote): an http(s) URL
 * only when the remote ends in `.git` or `.git#fragment`, so a trailing slash, a query string or
 * `.GIT` would make the engine download the URL as a plain file; else a `git://` or `git@` prefix.
 */
export function checkGitUrl(url: string): void {
  const refuse = (why: string): never => {
    throw new ImageBuildFailedError(
      redactGitUrl(url),
      `container.git.url ${redactGitUrl(url)} is not a Git URL the Docker engine can build from (${why}): ${ACCEPTED_FORMS}`,
    );
  };
  if (url.startsWith('git://') || url.startsWith('git@')) return;
  if (!url.startsWith('https://') && !url.startsWith('http://')) {
    refuse('it does not start with git://, git@, http:// or https://, in lower case');
  }
  if (url.includes('?')) {
    refuse(
      'the engine downloads a URL with a query string as a file; give a token as the user info instead (https://user:token@host/repo.git)',
    );
  }
  if (!url.endsWith('.git')) refuse('its path does not end in .git');
}

/**
 * The source as the engine will build it: the URL checked (checkGitUrl), a trailing slash after
 * `.git` dropped, and a fragment `#ref[:folder]` (the engine's own syntax) moved into `ref` and
 * `context`, since remoteContext() writes its own fragment. Throws ImageBuildFailedError
 * (`image-build-failed`) for a URL the engine would not build as Git, or a fragment that
 * contradicts `ref` or `context`.
 */
export function normalizeGitSource(source: GitSource): GitSource {
  const hash = source.url.indexOf('#');
  const url = (hash >= 0 ? source.url.slice(0, hash) : source.url).replace(
    /^(https?:\/\/[^?]*\.git)\/+$/,
    '$1',
  );
  checkGitUrl(url);
  const fragment = hash >= 0 ? source.url.slice(hash + 1) : '';
  const colon = fragment.indexOf(':');
  const fragmentRef = colon >= 0 ? fragment.slice(0, colon) : fragment;
  const fragmentFolder = folderOf(colon >= 0 ? fragment.slice(colon + 1) : '');
  const conflict = (what: string, fromUrl: string, given: string): never => {
    throw new ImageBuildFailedError(
      redactGitUrl(url),
      `the URL's fragment names the ${what} ${fromUrl}, but container.git.${what === 'ref' ? 'ref' : 'context'} is ${given}: give it in one place`,
    );
  };
  let ref = source.ref;
  if (fragmentRef !== '') {
    if (ref !== undefined && ref !== fragmentRef) conflict('ref', fragmentRef, ref);
    ref = fragmentRef;
  }
  let context = source.context;
  if (fragmentFolder !== '') {
    const given = folderOf(context);
    if (given !== '' && given !== fragmentFolder) conflict('folder', fragmentFolder, context);
    context = fragmentFolder;
  }
  return { ...source, url, ...(ref === undefined ? {} : { ref }), context };
}

/** A folder of the repository as the remote context writes it: `./docker/` is `docker`, the root ''. */
function folderOf(context: string): string {
  return context.replace(/^\.\/?/, '').replace(/\/$/, '');
}

/** The engine's remote context for a commit: `url#commit:context` (the URL without a fragment). */
export function remoteContext(source: GitSource, commit: string): string {
  const context = folderOf(source.context);
  return `${source.url}#${commit}${context === '' ? '' : `:${context}`}`;
}

/**
 * Resolves `ref` (default: the default branch) to a commit id with `git ls-remote` (no shell, no
 * terminal prompt). A full commit id is taken as it is.
 */
export async function resolveGitCommit(url: string, ref: string | undefined): Promise<string> {
  if (ref !== undefined && COMMIT_ID.test(ref)) return ref;
  const patterns = ref === undefined ? ['HEAD'] : [ref, `${ref}^{}`];
  const output = await lsRemote(url, patterns);
  const refs = new Map<string, string>();
  for (const line of output.split('\n')) {
    const [commit, name] = line.split('\t');
    if (commit !== undefined && name !== undefined && COMMIT_ID.test(commit))
      refs.set(name, commit);
  }
  const candidates =
    ref === undefined
      ? ['HEAD']
      : [
          `refs/heads/${ref}`,
          `refs/tags/${ref}^{}`,
          `refs/tags/${ref}`,
          `${ref}^{}`,
          ref,
          `refs/${ref}`,
        ];
  for (const candidate of candidates) {
    const commit = refs.get(candidate);
    if (commit !== undefined) return commit;
  }
  throw new ImageBuildFailedError(
    redactGitUrl(url),
    ref === undefined
      ? `the Git repository ${redactGitUrl(url)} has no default branch (HEAD); give container.git.ref`
      : `the Git ref "${ref}" is neither a branch nor a tag of ${redactGitUrl(url)}; check container.git.ref`,
  );
}

function lsRemote(url: string, patterns: string[]): Promise<string> {
  const secrets = gitUrlSecrets(url);
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      ['ls-remote', '--', url, ...patterns],
      {
        timeout: GIT_TIMEOUT_MS,
        maxBuffer: 4 * 1024 * 1024,
        // Never wait for a password on a terminal or a GUI helper: fail instead.
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '' },
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve(stdout);
          return;
        }
        const code: unknown = Reflect.get(error, 'code');
        const detail =
          code === 'ENOENT'
            ? 'git is not installed on this worker (apt-get install git)'
            : stderr.trim() || error.message;
        reject(
          new ImageBuildFailedError(
            redactGitUrl(url),
            maskSecrets(
              `cannot read the Git repository ${redactGitUrl(url)}: ${detail.replace(url, redactGitUrl(url))}`,
              secrets,
            ),
          ),
        );
      },
    );
  });
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
