/** What a case reports, and how the table is printed. */
import { stats, type Stats } from './measure.js';

export interface Row {
  /** What was measured, e.g. "agent: task → result". */
  metric: string;
  unit: string;
  stats: Stats;
  /** The row this one is compared with, as "ratio = this / baseline". */
  baseline?: string;
  ratio?: number;
}

export interface Goal {
  text: string;
  met: boolean;
  /** The figure the goal was judged on, as printed. */
  actual: string;
}

export interface CaseResult {
  name: string;
  title: string;
  rows: Row[];
  goals: Goal[];
  notes: string[];
  /** Set when the case broke: the bench then exits non-zero. */
  error?: string;
  durationMs: number;
  /** Of the CPU time this VM wanted during the case, the share its host took for others (steal). */
  hostStealPercent: number;
}

/** Collects a case's rows and goals. */
export class CaseReport {
  readonly rows: Row[] = [];
  readonly goals: Goal[] = [];
  readonly notes: string[] = [];

  /** Adds a row from samples and returns its stats. */
  row(metric: string, unit: string, samples: readonly number[]): Stats {
    const s = stats(samples);
    this.rows.push({ metric, unit, stats: s });
    return s;
  }

  /** Adds a row compared with an earlier row (by metric): ratio of the medians. */
  compared(metric: string, unit: string, samples: readonly number[], baseline: string): Stats {
    const s = stats(samples);
    const base = this.rows.find((r) => r.metric === baseline);
    const ratio = base === undefined ? undefined : s.median / base.stats.median;
    this.rows.push({
      metric,
      unit,
      stats: s,
      baseline,
      ...(ratio === undefined ? {} : { ratio }),
    });
    return s;
  }

  goal(text: string, met: boolean, actual: string): void {
    this.goals.push({ text, met, actual });
  }

  note(text: string): void {
    this.notes.push(text);
  }
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  if (abs >= 10) return value.toFixed(2);
  return value.toFixed(3);
}

export function formatValue(value: number, unit: string): string {
  return `${formatNumber(value)} ${unit}`;
}

/** The whole run as a plain-text table, goals and notes under each case. */
export function renderTable(results: readonly CaseResult[]): string {
  const header = ['case', 'metric', 'unit', 'median', 'min', 'max', 'n', 'ratio', 'vs'];
  const lines: string[][] = [];
  for (const result of results) {
    for (const row of result.rows) {
      lines.push([
        result.name,
        row.metric,
        row.unit,
        formatNumber(row.stats.median),
        formatNumber(row.stats.min),
        formatNumber(row.stats.max),
        String(row.stats.n),
        row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
        row.baseline ?? '',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const numeric = new Set([3, 4, 5, 6, 7]);
  const render = (cells: readonly string[]): string =>
    cells
      .map((cell, i) =>
        numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const out = [render(header), render(widths.map((w) => '-'.repeat(w)))];
  let previous: string | undefined;
  for (const line of lines) {
    if (previous !== undefined && line[0] !== previous) out.push('');
    previous = line[0];
    out.push(render(line));
  }
  out.push('');
  out.push('goals (reported, never asserted):');
  for (const result of results) {
    for (const goal of result.goals) {
      out.push(`  ${goal.met ? 'PASS' : 'MISS'}  ${result.name}: ${goal.text} — ${goal.actual}`);
    }
  }
  const notes = results.flatMap((r) => r.notes.map((n) => `  ${r.name}: ${n}`));
  if (notes.length > 0) out.push('', 'notes:', ...notes);
  const errors = results.filter((r) => r.error !== undefined);
  if (errors.length > 0) {
    out.push('', 'errors:', ...errors.map((r) => `  ${r.name}: ${r.error ?? ''}`));
  }
  return out.join('\n');
}
