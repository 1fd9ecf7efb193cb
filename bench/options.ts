/** Run-wide settings from the environment: BENCH_QUICK=1 for fewer repetitions and smaller sizes. */
export interface BenchOptions {
  quick: boolean;
  /** Added to task ids and build labels so nothing collides with an earlier run. */
  runId: string;
}
