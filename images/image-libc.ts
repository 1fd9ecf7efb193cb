import { posix } from 'node:path';
import type { DockerClient } from './docker-client.js';
import { ImageIncompatibleError } from './docker-errors.js';
import { AGENT_LABEL, INSPECT_LABEL } from './labels.js';

export type Libc = 'glibc' | 'musl';
export type DetectedLibc = Libc | 'unknown';

export interface LibcReport {
  libc: DetectedLibc;
  /** The file that decided it, e.g. `/lib/ld-musl-x86_64.so.1`; undefined when nothing did. */
  evidence: string | undefined;
  /** PRETTY_NAME (or NAME) from /etc/os-release, when the image has one. */
  os: string | undefined;
}

/** glibc's C library itself, by multiarch and lib64 layouts (Debian, Ubuntu, RHEL, Fedora, SUSE). */
const GLIBC_LIBRARIES = [
  '/lib/x86_64-linux-gnu/libc.so.6',
  '/lib/aarch64-linux-gnu/libc.so.6',
  '/lib/arm-linux-gnueabihf/libc.so.6',
  '/lib/i386-linux-gnu/libc.so.6',
  '/lib/powerpc64le-linux-gnu/libc.so.6',
  '/lib/s390x-linux-gnu/libc.so.6',
  '/usr/lib/x86_64-linux-gnu/libc.so.6',
  '/usr/lib/aarch64-linux-gnu/libc.so.6',
  '/lib64/libc.so.6',
  '/usr/lib64/libc.so.6',
  '/lib/libc.so.6',
  '/usr/lib/libc.so.6',
];

/** musl's dynamic loader, which is also its C library. */
const MUSL_LOADERS = [
  '/lib/ld-musl-x86_64.so.1',
  '/lib/ld-musl-aarch64.so.1',
  '/lib/ld-musl-armhf.so.1',
  '/lib/ld-musl-armv7.so.1',
  '/lib/ld-musl-i386.so.1',
  '/lib/ld-musl-ppc64le.so.1',
  '/lib/ld-musl-s390x.so.1',
];

/** glibc's dynamic loaders; gcompat provides some of these on musl, so they count after musl's. */
const GLIBC_LOADERS = [
  '/lib64/ld-linux-x86-64.so.2',
  '/lib/ld-linux-aarch64.so.1',
  '/lib/ld-linux-armhf.so.3',
  '/lib/ld-linux.so.2',
  '/lib64/ld64.so.2',
  '/lib/ld64.so.1',
];

const MUSL_DISTRIBUTIONS = new Set(['alpine', 'chimera', 'postmarketos', 'wolfi-musl']);
const GLIBC_DISTRIBUTIONS = new Set([
  'debian',
  'ubuntu',
  'rhel',
  'centos',
  'fedora',
  'rocky',
  'almalinux',
  'ol',
  'amzn',
  'opensuse-leap',
  'opensuse-tumbleweed',
  'sles',
  'arch',
  'wolfi',
  'photon',
  'mariner',
  'azurelinux',
]);

const MAX_OS_RELEASE_BYTES = 16 * 1024;
const MAX_LINKS = 8;

/**
 * Finds the image's C library from its files, without running it: a container is created (never
 * started), a few known paths are looked up through the archive API, and the container is removed.
 * Order: glibc's libc.so.6, then musl's loader, then glibc's loader, then /etc/os-release's ID.
 */
export async function inspectImageLibc(
  docker: DockerClient,
  ref: string,
  labels: Record<string, string> = {},
): Promise<LibcReport> {
  const id = await docker.createInertContainer(ref, {
    [AGENT_LABEL]: 'libc-check',
    [INSPECT_LABEL]: '1',
    ...labels,
  });
  try {
    const present = async (paths: readonly string[]): Promise<string | undefined> => {
      const stats = await Promise.all(paths.map((path) => docker.statPath(id, path)));
      return paths[stats.findIndex((stat) => stat !== undefined)];
    };
    const osRelease = await readOsRelease(docker, id);
    const os = osRelease.get('PRETTY_NAME') ?? osRelease.get('NAME');
    const report = (libc: DetectedLibc, evidence: string | undefined): LibcReport => ({
      libc,
      evidence,
      os,
    });
    const glibc = await present(GLIBC_LIBRARIES);
    if (glibc !== undefined) return report('glibc', glibc);
    const musl = await present(MUSL_LOADERS);
    if (musl !== undefined) return report('musl', musl);
    const loader = await present(GLIBC_LOADERS);
    if (loader !== undefined) return report('glibc', loader);
    const osId = osRelease.get('ID');
    if (osId !== undefined && MUSL_DISTRIBUTIONS.has(osId))
      return report('musl', '/etc/os-release');
    if (osId !== undefined && GLIBC_DISTRIBUTIONS.has(osId))
      return report('glibc', '/etc/os-release');
    return report('unknown', undefined);
  } finally {
    await docker.remove(id);
  }
}

/** The image's C library: `glibc`, `musl`, or `unknown` (e.g. a scratch image of static files). */
export async function detectImageLibc(docker: DockerClient, ref: string): Promise<DetectedLibc> {
  return (await inspectImageLibc(docker, ref)).libc;
}

/**
 * Throws image-incompatible when the image's C library cannot run a tool built for `required`.
 * An `unknown` image passes: nothing shows it cannot (a static tool runs anywhere).
 */
export function checkLibc(
  required: Libc | undefined,
  found: LibcReport | DetectedLibc,
  image: string,
  toolName = 'the tool',
): void {
  const report: LibcReport =
    typeof found === 'string' ? { libc: found, evidence: undefined, os: undefined } : found;
  if (required === undefined || report.libc === 'unknown' || report.libc === required) return;
  const what = [
    report.os,
    report.evidence === undefined ? undefined : `found ${report.evidence}`,
  ].filter((part): part is string => part !== undefined);
  const instead =
    required === 'glibc'
      ? 'use a glibc-based image such as Debian or Ubuntu (e.g. debian:bookworm-slim) instead of Alpine or another musl-based image'
      : 'use a musl-based image such as Alpine instead';
  throw new ImageIncompatibleError(
    image,
    `the image ${image} is ${report.libc}-based${what.length > 0 ? ` (${what.join('; ')})` : ''}, but ${toolName} needs ${required}: ${instead}`,
  );
}

async function readOsRelease(docker: DockerClient, id: string): Promise<Map<string, string>> {
  // Debian's /etc/os-release is a link to ../usr/lib/os-release; the archive API does not follow.
  let path = '/etc/os-release';
  for (let hop = 0; hop < MAX_LINKS; hop += 1) {
    const entry = await docker.readPath(id, path, MAX_OS_RELEASE_BYTES);
    if (entry === undefined) break;
    if ('linkTarget' in entry) {
      path = posix.resolve(posix.dirname(path), entry.linkTarget);
      continue;
    }
    return parseOsRelease(entry.content.toString('utf8'));
  }
  if (path === '/etc/os-release') {
    const fallback = await docker.readPath(id, '/usr/lib/os-release', MAX_OS_RELEASE_BYTES);
    if (fallback !== undefined && 'content' in fallback) {
      return parseOsRelease(fallback.content.toString('utf8'));
    }
  }
  return new Map();
}

/** KEY=value lines, values optionally quoted (os-release(5)). */
export function parseOsRelease(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match?.[1] === undefined || match[2] === undefined) continue;
    let value = match[2];
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    fields.set(match[1], value);
  }
  return fields;
}
