/**
 * `npm run bench`: runs the cases (all, or those named in BENCH_CASES=logs,idle), prints a table and
 * writes the same figures as JSON to bench/results/<timestamp>.json. BENCH_QUICK=1 runs fewer
 * repetitions on smaller sizes. Goals are reported, never asserted: the run fails only when a case
 * breaks.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import * as artifacts from './artifacts.js';
import * as caches from './caches.js';
import * as concurrency from './concurrency.js';
import { engineVersion } from './engine.js';
import * as idle from './idle.js';
import * as logs from './logs.js';
import { machineCpu, now, stealPercent, withTimeout } from './measure.js';
import type { BenchOptions } from './options.js';
import * as reconnect from './reconnect.js';
import { CaseReport, renderTable, type CaseResult } from './report.js';
import * as stepOverhead from './step-overhead.js';

interface BenchCase {
  title: string;
  run(report: CaseReport, options: BenchOptions): Promise<void>;
}

/** In the order they run; each is bounded in time. */
const CASES: Record<string, { module: BenchCase; limitMinutes: number }> = {
  'step-overhead': { module: stepOverhead, limitMinutes: 10 },
  logs: { module: logs, limitMinutes: 20 },
  artifacts: { module: artifacts, limitMinutes: 15 },
  concurrency: { module: concurrency, limitMinutes: 10 },
  caches: { module: caches, limitMinutes: 15 },
  idle: { module: idle, limitMinutes: 5 },
  reconnect: { module: reconnect, limitMinutes: 5 },
};

/** bench/results in the source tree (this file runs from dist/bench). */
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

function selectedCases(): string[] {
  const wanted = (process.env.BENCH_CASES ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (wanted.length === 0) return Object.keys(CASES);
  const unknown = wanted.filter((name) => !(name in CASES));
  if (unknown.length > 0) {
    throw new Error(
      `BENCH_CASES names unknown cases: ${unknown.join(', ')}; known: ${Object.keys(CASES).join(', ')}`,
    );
  }
  return Object.keys(CASES).filter((name) => wanted.includes(name));
}

async function main(): Promise<number> {
  const options: BenchOptions = {
    quick: process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true',
    runId: randomUUID().slice(0, 8),
  };
  const names = selectedCases();
  const started = new Date();
  const machine = {
    host: hostname(),
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    docker: await engineVersion(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  console.log(
    `cuttle bench${options.quick ? ' (BENCH_QUICK)' : ''}: ${names.join(', ')}\n` +
      `machine: ${machine.cpus}, ${machine.memoryGiB} GiB, Node ${machine.node}, Docker ${machine.docker}, ` +
      `load ${machine.loadAverageAtStart.join(' ')}\n`,
  );
  const results: CaseResult[] = [];
  for (const name of names) {
    const entry = CASES[name];
    if (entry === undefined) continue;
    const report = new CaseReport();
    const cpuBefore = await machineCpu();
    const start = now();
    process.stdout.write(`- ${name}: ${entry.module.title} … `);
    let error: string | undefined;
    try {
      await withTimeout(
        entry.module.run(report, options),
        entry.limitMinutes * 60_000,
        `the ${name} case (its limit is ${entry.limitMinutes} min)`,
      );
    } catch (caught) {
      error = caught instanceof Error ? (caught.stack ?? caught.message) : String(caught);
    }
    const durationMs = now() - start;
    // A VM's figures move with its host's load; steal says how contended the host was meanwhile.
    const hostStealPercent = stealPercent(cpuBefore, await machineCpu());
    const steal = `host steal ${hostStealPercent.toFixed(1)}%`;
    console.log(error === undefined ? `${(durationMs / 1000).toFixed(1)} s (${steal})` : 'FAILED');
    report.note(
      `the host took ${hostStealPercent.toFixed(1)}% of the CPU time this VM wanted during the ` +
        'case (steal in /proc/stat): the higher, the slower every figure, baselines included',
    );
    if (error !== undefined) console.error(error);
    results.push({
      name,
      title: entry.module.title,
      rows: report.rows,
      goals: report.goals,
      notes: report.notes,
      ...(error === undefined ? {} : { error }),
      durationMs,
      hostStealPercent,
    });
  }
  console.log(`\n${renderTable(results)}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    JSON.stringify(
      { startedAt: started.toISOString(), quick: options.quick, machine, results },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nwritten to ${file}`);
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
