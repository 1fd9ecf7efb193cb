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
 * user part alone when it has no password (a token used as the user name). Both as written and
 * percent-decoded.
 */
export function gitUrlSecrets(url: string): string[] {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^@/?#]*)@/i.exec(url)?.[1];
  if (userinfo === undefined || userinfo === '') return [];
  const colon = userinfo.indexOf(':');
  const secret = colon >= 0 ? userinfo.slice(colon + 1) : userinfo;
  if (secret === '') return [];
  return [...new Set([secret, safeDecode(secret)])].filter((value) => value !== '');
}

/** The URL without its credentials, for labels, logs and messages. */
export function redactGitUrl(url: string): string {
  return url.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i,
    (_all, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return colon >= 0 ? `${scheme}${info.slice(0, colon)}:${MASK}@` : `${scheme}${MASK}@`;
    },
  );
}

/** Replaces each secret in the text by the mask. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let masked = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret !== '') masked = masked.split(secret).join(MASK);
  }
  return masked;
}

/**
 * Docker's classic builder takes a remote context as Git only for git://, git@, and http(s) URLs
 * whose path ends in `.git`; anything else it would download as a tarball.
 */
export function checkGitUrl(url: string): void {
  const gitLike =
    /^git:\/\//i.test(url) ||
    /^git@/i.test(url) ||
    (/^https?:\/\//i.test(url) && /\.git\/?$/i.test(url.replace(/[?#].*$/, '')));
  if (!gitLike) {
    throw new ImageBuildFailedError(
      redactGitUrl(url),
      `container.git.url ${redactGitUrl(url)} is not a Git URL the Docker engine can build from: use git://..., git@host:path, or an http(s) URL ending in .git`,
    );
  }
}

/** The engine's remote context for a commit: `url#commit:context`. */
export function remoteContext(source: GitSource, commit: string): string {
  const context = source.context.replace(/^\.\/?/, '').replace(/\/$/, '');
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
