/**
 * A small glibc image with a real bash, made from the host's own /bin/bash and the libraries it
 * links, on top of the busybox demo image (no registry, no debootstrap needed). Stands in for the
 * Debian/Ubuntu images that real Octopus bash scripts run in.
 */
import { readFile } from 'node:fs/promises';
import { DEMO_IMAGE, ensureDemoImage, tarContext, type DockerClient } from '../../images/index.js';

export const BASH_IMAGE = 'cuttle-test-bash:1';

const FILES = [
  ['/bin/bash', 'usr/bin/bash', 0o755],
  ['/lib/x86_64-linux-gnu/libtinfo.so.6', 'lib/x86_64-linux-gnu/libtinfo.so.6', 0o644],
  ['/lib/x86_64-linux-gnu/libc.so.6', 'lib/x86_64-linux-gnu/libc.so.6', 0o644],
  ['/lib64/ld-linux-x86-64.so.2', 'lib64/ld-linux-x86-64.so.2', 0o755],
] as const;

export async function ensureBashImage(docker: DockerClient, extraLines = ''): Promise<string> {
  const tag =
    extraLines === ''
      ? BASH_IMAGE
      : `${BASH_IMAGE}-${Buffer.from(extraLines).toString('hex').slice(0, 16)}`;
  if ((await docker.imageExists(tag)) !== undefined) return tag;
  await ensureDemoImage(docker);
  const entries = [];
  for (const [source, target, mode] of FILES) {
    entries.push({ name: `rootfs/${target}`, content: await readFile(source), mode });
  }
  await docker.buildImage({
    tag,
    labels: { 'dev.cuttle.test': 'bash' },
    context: await tarContext([
      { name: 'Dockerfile', content: `FROM ${DEMO_IMAGE}\nCOPY rootfs/ /\n${extraLines}\n` },
      ...entries,
    ]),
  });
  return tag;
}
