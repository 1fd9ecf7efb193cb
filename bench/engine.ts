/**
 * The baselines: what the same work costs without cuttle, measured in the same run. The Engine API
 * is called directly through dockerode (the physical floor), and the docker CLI is what users would
 * otherwise run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { now } from './measure.js';

const run = promisify(execFile);

/** Labelled so that a crashed run's leftovers can be found: `docker ps -a -f label=dev.cuttle.bench`. */
export const BENCH_LABEL = 'dev.cuttle.bench';

let shared: Docker | undefined;

function docker(): Docker {
  shared ??= new Docker();
  return shared;
}

/** create + start + wait + remove of `cmd` in `image`, by four Engine API calls; milliseconds. */
export async function apiRun(
  image: string,
  cmd: string[],
  hostConfig: Docker.HostConfig = {},
): Promise<number> {
  const start = now();
  const container = await docker().createContainer({
    Image: image,
    Cmd: cmd,
    Labels: { [BENCH_LABEL]: '1' },
    HostConfig: hostConfig,
  });
  try {
    await container.start();
    const result: unknown = await container.wait();
    const code: unknown =
      typeof result === 'object' && result !== null ? Reflect.get(result, 'StatusCode') : undefined;
    if (code !== 0) throw new Error(`${cmd.join(' ')} in ${image} exited ${String(code)}`);
  } finally {
    await container.remove({ force: true });
  }
  return now() - start;
}

/** `docker run --rm IMAGE ...cmd`, as a user would type it; milliseconds. */
export async function cliRun(image: string, cmd: string[]): Promise<number> {
  const start = now();
  await run('docker', ['run', '--rm', '--label', `${BENCH_LABEL}=1`, image, ...cmd]);
  return now() - start;
}

/**
 * The command's output read straight from the engine: a container with log driver `none`,
 * attached before it starts, stdout and stderr demultiplexed and counted. Returns the time from
 * create to removal and the bytes read.
 */
export async function apiAttachedRun(
  image: string,
  cmd: string[],
): Promise<{ ms: number; bytes: number }> {
  const start = now();
  const container = await docker().createContainer({
    Image: image,
    Cmd: cmd,
    Labels: { [BENCH_LABEL]: '1' },
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: { LogConfig: { Type: 'none', Config: {} } },
  });
  const counter = new FrameCounter();
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const ended = new Promise<void>((resolve, reject) => {
      stream.once('end', () => resolve());
      stream.once('close', () => resolve());
      stream.once('error', reject);
    });
    stream.on('data', (chunk: Buffer) => counter.push(chunk));
    await container.start();
    await container.wait();
    await ended;
  } finally {
    await container.remove({ force: true });
  }
  return { ms: now() - start, bytes: counter.payloadBytes };
}

/** Runs `count` API runs, `concurrency` at a time; total milliseconds. */
export async function apiRunsConcurrently(
  image: string,
  cmd: string[],
  count: number,
  concurrency: number,
): Promise<number> {
  const start = now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      await apiRun(image, cmd);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return now() - start;
}

/** The engine's version, for the results. */
export async function engineVersion(): Promise<string> {
  try {
    const version = await docker().version();
    return `${version.Version} (API ${version.ApiVersion})`;
  } catch (error) {
    return `unknown (${String(error)})`;
  }
}

/**
 * Counts the payload of the engine's multiplexed stream (no TTY): frames of an 8-byte header (stream
 * type, 3 zero bytes, big-endian payload size) followed by the payload.
 */
class FrameCounter {
  payloadBytes = 0;
  #header = Buffer.alloc(0);
  /** Payload bytes still expected of the current frame. */
  #remaining = 0;

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - offset);
        this.payloadBytes += take;
        this.#remaining -= take;
        offset += take;
        continue;
      }
      const need = 8 - this.#header.length;
      this.#header = Buffer.concat([this.#header, chunk.subarray(offset, offset + need)]);
      offset += Math.min(need, chunk.length - offset);
      if (this.#header.length === 8) {
        this.#remaining = this.#header.readUInt32BE(4);
        this.#header = Buffer.alloc(0);
      }
    }
  }
}
