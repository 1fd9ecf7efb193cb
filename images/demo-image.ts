import { access, readFile } from 'node:fs/promises';
import { CuttleError } from '../protocol/errors.js';
import { tarContext } from './build-context.js';
import type { DockerClient } from './docker-client.js';
import { DEMO_LABEL } from './labels.js';
import { isStaticElf } from './static-elf.js';

/** A tiny image built from the host's busybox, so `cuttle try` and tests need no registry. */
export const DEMO_IMAGE = 'cuttle-demo:busybox';

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];
const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface BusyboxImageOptions {
  tag: string;
  /** Dockerfile lines appended after the base, e.g. `ENTRYPOINT ["/bin/false"]`. */
  dockerfileExtra?: string;
  labels?: Record<string, string>;
  onOutput?: (line: string) => void;
}

/** Builds `cuttle-demo:busybox` unless it is already present. */
export async function ensureDemoImage(
  client: DockerClient,
  options: { onOutput?: (line: string) => void } = {},
): Promise<{ ref: string; built: boolean }> {
  if ((await client.imageExists(DEMO_IMAGE)) !== undefined) {
    return { ref: DEMO_IMAGE, built: false };
  }
  await buildBusyboxImage(client, {
    tag: DEMO_IMAGE,
    labels: { [DEMO_LABEL]: '1' },
    ...(options.onOutput === undefined ? {} : { onOutput: options.onOutput }),
  });
  return { ref: DEMO_IMAGE, built: true };
}

/** `FROM scratch` plus the host's static busybox with every applet linked into /bin. */
export async function buildBusyboxImage(
  client: DockerClient,
  options: BusyboxImageOptions,
): Promise<void> {
  const busybox = await readStaticBusybox();
  const dockerfile = [
    'FROM scratch',
    'COPY rootfs/ /',
    // Exec form: there is no /bin/sh until busybox has installed its links.
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    `ENV PATH=${STANDARD_PATH}`,
    options.dockerfileExtra ?? '',
    '',
  ].join('\n');
  const context = await tarContext([
    { name: 'Dockerfile', content: dockerfile },
    { name: 'rootfs/bin/busybox', content: busybox, mode: 0o755 },
    { name: 'rootfs/etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'rootfs/etc/group', content: 'root:x:0:\n' },
    { name: 'rootfs/root', mode: 0o700 },
    { name: 'rootfs/tmp', mode: 0o1777 },
  ]);
  await client.buildImage({
    tag: options.tag,
    context,
    ...(options.labels === undefined ? {} : { labels: options.labels }),
    ...(options.onOutput === undefined ? {} : { onOutput: options.onOutput }),
  });
}

async function readStaticBusybox(): Promise<Buffer> {
  for (const candidate of BUSYBOX_CANDIDATES) {
    try {
      await access(candidate);
    } catch {
      continue;
    }
    const binary = await readFile(candidate);
    if (!isStaticElf(binary)) {
      throw new CuttleError(
        'internal',
        `${candidate} is dynamically linked, so it cannot run in an image without a C library. ` +
          'Install the static build: apt-get install busybox-static.',
      );
    }
    return binary;
  }
  throw new CuttleError(
    'internal',
    `No busybox found at ${BUSYBOX_CANDIDATES.join(' or ')}, needed to build the demo image ` +
      'without a registry. Install it: apt-get install busybox-static.',
  );
}
