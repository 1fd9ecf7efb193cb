/**
 * Measuring tools shared by the cases: repetition with median/min/max, wall-clock timing, and the
 * CPU seconds and resident memory of another process read from /proc (Linux only).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
export { withTimeout } from '../test/support/with-timeout.js';

const run = promisify(execFile);

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] ?? NaN)
      : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, n: sorted.length };
}

/** Milliseconds since an arbitrary origin, monotonic. */
export function now(): number {
  return performance.now();
}

/** Runs `fn` and returns how long it took, in milliseconds. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

/**
 * Runs each of several measurements `count` times, interleaved (a, b, c, a, b, c, ...) so that a
 * drift of the shared machine's load affects all of them alike. Returns the samples of each.
 */
export async function interleave<K extends string>(
  count: number,
  measures: Record<K, () => Promise<number>>,
): Promise<Map<K, number[]>> {
  const keys = Object.keys(measures).filter((k): k is K => k in measures);
  const samples = new Map<K, number[]>(keys.map((k) => [k, []]));
  for (let i = 0; i < count; i++) {
    for (const key of keys) samples.get(key)?.push(await measures[key]());
  }
  return samples;
}

let clockTicks: number | undefined;

/** Clock ticks per second, for the CPU times in /proc/<pid>/stat. */
async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    try {
      const { stdout } = await run('getconf', ['CLK_TCK']);
      const parsed = Number.parseInt(stdout.trim(), 10);
      clockTicks = Number.isFinite(parsed) && parsed > 0 ? parsed : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds the process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Field 3 (state) is index 0 here, so utime (14) and stime (15) are 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / (await ticksPerSecond());
}

/**
 * The machine's CPU time so far, all CPUs, in clock ticks: what its CPUs wanted (all but idle and
 * iowait), and of that what the hypervisor gave to others instead (steal).
 */
export interface MachineCpu {
  wanted: number;
  steal: number;
}

/** Reads the first line of /proc/stat (`cpu  user nice system idle iowait irq softirq steal …`). */
export async function machineCpu(): Promise<MachineCpu> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0] ?? '';
  // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return { wanted: user + nice + system + irq + softirq + steal, steal };
}

/**
 * Of the CPU time this VM wanted between two readings, the share its host gave to others (steal),
 * in percent: a measure of how contended the host was, whatever the VM's own load. 0 when the VM
 * wanted none (or the kernel reports no steal).
 */
export function stealPercent(before: MachineCpu, after: MachineCpu): number {
  const wanted = after.wanted - before.wanted;
  return wanted > 0 ? (100 * (after.steal - before.steal)) / wanted : 0;
}

export interface MemoryStatus {
  /** Resident now, bytes. */
  rss: number;
  /** Peak resident since start or since resetPeak(), bytes. */
  peak: number;
}

export async function memory(pid: number): Promise<MemoryStatus> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return match?.[1] === undefined ? NaN : Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/**
 * Resets the process's peak resident size (VmHWM) to its current size, so a later memory() reads
 * the peak of what came after. Needs the same user or root; returns false when not allowed, and
 * callers then rely on sampling.
 */
export async function resetPeak(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Watches a process while something runs: CPU seconds used, and the peak resident size (VmHWM
 * after a reset, or the highest of samples taken every `intervalMs` if the reset is not allowed).
 */
export class ProcessWatch {
  readonly #pid: number;
  #cpuStart = 0;
  #rssStart = 0;
  #sampledPeak = 0;
  #peakReset = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #samples: number[] = [];

  private constructor(pid: number) {
    this.#pid = pid;
  }

  static async start(pid: number, intervalMs = 100): Promise<ProcessWatch> {
    const watch = new ProcessWatch(pid);
    watch.#peakReset = await resetPeak(pid);
    watch.#cpuStart = await cpuSeconds(pid);
    const { rss } = await memory(pid);
    watch.#rssStart = rss;
    watch.#sampledPeak = rss;
    watch.#timer = setInterval(() => {
      memory(pid).then(
        (m) => {
          watch.#samples.push(m.rss);
          watch.#sampledPeak = Math.max(watch.#sampledPeak, m.rss);
        },
        () => undefined,
      );
    }, intervalMs);
    return watch;
  }

  /** Stops sampling and returns what was seen. */
  async stop(): Promise<{
    cpuSeconds: number;
    rssStart: number;
    rssEnd: number;
    peak: number;
    samples: number[];
  }> {
    clearInterval(this.#timer);
    const cpu = (await cpuSeconds(this.#pid)) - this.#cpuStart;
    const m = await memory(this.#pid);
    const peak = this.#peakReset ? Math.max(m.peak, this.#sampledPeak) : this.#sampledPeak;
    return {
      cpuSeconds: cpu,
      rssStart: this.#rssStart,
      rssEnd: m.rss,
      peak: Math.max(peak, m.rss),
      samples: [...this.#samples],
    };
  }
}

export const MIB = 1024 * 1024;
export const MB = 1000 * 1000;
