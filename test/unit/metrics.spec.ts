import assert from 'node:assert/strict';
import { register as globalRegistry } from 'prom-client';
import { AgentMetrics } from '../../agent/metrics.js';
import {
  httpUrl,
  isListenAddress,
  isLoopback,
  parseListenAddress,
} from '../../agent/listen-address.js';
import { CuttleError, OUTCOMES, TASK_STATES } from '../../protocol/index.js';
import { parsePrometheusText, sampleValue, type Exposition } from '../support/prometheus.js';

/** What the journal reports for an event without log lines. */
const NO_LINES = { lineBytes: 0 };

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000_000;
  return { now: () => time, advance: (ms) => (time += ms) };
}

async function scrape(metrics: AgentMetrics): Promise<Exposition> {
  return parsePrometheusText(await metrics.text());
}

describe('AgentMetrics', () => {
  it('exposes every family with HELP and TYPE, and each outcome and phase series from the start', async () => {
    const metrics = new AgentMetrics({ version: '1.2.3', defaultMetrics: false });
    const exposition = await scrape(metrics);
    const families: Record<string, string> = {
      cuttle_agent_info: 'gauge',
      cuttle_server_connected: 'gauge',
      cuttle_server_reconnects_total: 'counter',
      cuttle_docker_engine_available: 'gauge',
      cuttle_tasks_queued: 'gauge',
      cuttle_tasks_running: 'gauge',
      cuttle_tasks_finished_total: 'counter',
      cuttle_task_duration_seconds: 'histogram',
      cuttle_task_phase_duration_seconds: 'histogram',
      cuttle_image_pull_duration_seconds: 'histogram',
      cuttle_image_build_duration_seconds: 'histogram',
      cuttle_log_sent_bytes_total: 'counter',
      cuttle_artifact_sent_bytes_total: 'counter',
      cuttle_journal_backlog_events: 'gauge',
    };
    for (const [name, type] of Object.entries(families)) {
      assert.equal(exposition.types.get(name), type, name);
      assert.ok((exposition.help.get(name) ?? '').length > 10, `${name} has help`);
    }
    assert.equal(sampleValue(exposition, 'cuttle_agent_info', { version: '1.2.3' }), 1);
    for (const outcome of OUTCOMES) {
      assert.equal(sampleValue(exposition, 'cuttle_tasks_finished_total', { outcome }), 0);
      assert.equal(sampleValue(exposition, 'cuttle_task_duration_seconds_count', { outcome }), 0);
    }
    for (const phase of TASK_STATES) {
      assert.equal(
        sampleValue(exposition, 'cuttle_task_phase_duration_seconds_count', { phase }),
        0,
      );
    }
    assert.equal(sampleValue(exposition, 'cuttle_server_connected'), 0);
    assert.equal(sampleValue(exposition, 'cuttle_docker_engine_available'), 0);
  });

  it('collects process and Node.js metrics into its own registry, never the global one', async () => {
    const metrics = new AgentMetrics();
    const names = new Set((await scrape(metrics)).samples.map((s) => s.name));
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.ok(names.has(name), name);
    }
    const global = await globalRegistry.metrics();
    assert.doesNotMatch(global, /cuttle_/);
    // A second registry is independent: no "already registered" error, no shared counters.
    const other = new AgentMetrics({ defaultMetrics: true });
    other.reconnected();
    assert.equal(sampleValue(await scrape(metrics), 'cuttle_server_reconnects_total'), 0);
    assert.equal(sampleValue(await scrape(other), 'cuttle_server_reconnects_total'), 1);
  });

  it('tracks the connection, reconnects and the engine, and answers readiness from them', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    assert.deepEqual(metrics.readiness(), { connected: false, engine: false });
    metrics.engineAvailable(true);
    metrics.connectionState(true);
    assert.deepEqual(metrics.readiness(), { connected: true, engine: true });
    metrics.connectionState(false);
    metrics.connectionState(true);
    metrics.reconnected();
    metrics.engineAvailable(false);
    const exposition = await scrape(metrics);
    assert.equal(sampleValue(exposition, 'cuttle_server_connected'), 1);
    assert.equal(sampleValue(exposition, 'cuttle_server_reconnects_total'), 1);
    assert.equal(sampleValue(exposition, 'cuttle_docker_engine_available'), 0);
    assert.deepEqual(metrics.readiness(), { connected: true, engine: false });
  });

  it('counts tasks queued and running, their outcomes, durations and time spent queued', async () => {
    const clock = manualClock();
    const metrics = new AgentMetrics({ defaultMetrics: false, now: clock.now });
    metrics.taskStarted('a');
    metrics.taskQueued('b');
    let exposition = await scrape(metrics);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_running'), 1);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_queued'), 1);

    clock.advance(4000);
    metrics.taskFinished('a', 'success', 4000);
    metrics.taskStarted('b');
    metrics.taskFinished('b', 'failure', 1500);
    metrics.taskFinished('b', 'failure', 1500); // reported twice: counted once
    exposition = await scrape(metrics);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_running'), 0);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_queued'), 0);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_finished_total', { outcome: 'success' }), 1);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_finished_total', { outcome: 'failure' }), 1);
    assert.equal(
      sampleValue(exposition, 'cuttle_task_duration_seconds_sum', { outcome: 'success' }),
      4,
    );
    assert.equal(
      sampleValue(exposition, 'cuttle_task_duration_seconds_bucket', {
        outcome: 'failure',
        le: '5',
      }),
      1,
    );
    assert.equal(
      sampleValue(exposition, 'cuttle_task_duration_seconds_bucket', {
        outcome: 'failure',
        le: '1',
      }),
      0,
    );
    assert.equal(
      sampleValue(exposition, 'cuttle_task_phase_duration_seconds_sum', { phase: 'queued' }),
      4,
    );
  });

  it('times each state of a task with a phase clock, pulls and builds included', async () => {
    const clock = manualClock();
    const metrics = new AgentMetrics({ defaultMetrics: false, now: clock.now });
    const phases = metrics.phaseClock();
    phases.enter('preparing');
    clock.advance(250);
    phases.enter('pulling');
    clock.advance(2000);
    phases.enter('building');
    clock.advance(3000);
    phases.enter('running');
    clock.advance(500);
    phases.enter('running'); // the same state again changes nothing
    clock.advance(500);
    phases.enter('cleaning');
    clock.advance(100);
    phases.end();
    phases.end();
    const exposition = await scrape(metrics);
    const sum = (phase: string): number | undefined =>
      sampleValue(exposition, 'cuttle_task_phase_duration_seconds_sum', { phase });
    assert.equal(sum('preparing'), 0.25);
    assert.equal(sum('pulling'), 2);
    assert.equal(sum('building'), 3);
    assert.equal(sum('running'), 1);
    assert.equal(sum('cleaning'), 0.1);
    assert.equal(
      sampleValue(exposition, 'cuttle_task_phase_duration_seconds_count', { phase: 'running' }),
      1,
    );
    assert.equal(sampleValue(exposition, 'cuttle_image_pull_duration_seconds_sum'), 2);
    assert.equal(sampleValue(exposition, 'cuttle_image_pull_duration_seconds_count'), 1);
    assert.equal(sampleValue(exposition, 'cuttle_image_build_duration_seconds_sum'), 3);
  });

  it('reads a task from the events it journals: phases, bytes, outcome and duration', async () => {
    const clock = manualClock();
    const metrics = new AgentMetrics({ defaultMetrics: false, now: clock.now });
    metrics.taskStarted('t');
    const task = metrics.forTask('t');
    task.journalled({ kind: 'state', state: 'preparing' }, NO_LINES);
    clock.advance(1000);
    task.journalled({ kind: 'state', state: 'pulling' }, NO_LINES);
    clock.advance(4000);
    task.journalled({ kind: 'state', state: 'running' }, NO_LINES);
    task.journalled(
      { kind: 'log', stream: 'stdout', level: 'info', lines: ['abc'] },
      { lineBytes: 3 },
    );
    clock.advance(2000);
    task.journalled(
      { kind: 'result', outcome: 'timeout', exitCode: null, durationMs: 7000 },
      NO_LINES,
    );
    const exposition = await scrape(metrics);
    const phase = (name: string): number | undefined =>
      sampleValue(exposition, 'cuttle_task_phase_duration_seconds_sum', { phase: name });
    assert.deepEqual([phase('preparing'), phase('pulling'), phase('running')], [1, 4, 2]);
    assert.equal(sampleValue(exposition, 'cuttle_image_pull_duration_seconds_sum'), 4);
    assert.equal(sampleValue(exposition, 'cuttle_log_sent_bytes_total'), 3);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_finished_total', { outcome: 'timeout' }), 1);
    assert.equal(
      sampleValue(exposition, 'cuttle_task_duration_seconds_sum', { outcome: 'timeout' }),
      7,
    );
    assert.equal(sampleValue(exposition, 'cuttle_tasks_running'), 0);
  });

  it('adds log and artifact bytes, from journalled events too, and reads the journal backlog at every scrape', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    metrics.logBytes(100);
    metrics.logBytes(23);
    metrics.logBytes(0);
    metrics.artifactBytes(4000);
    // What the task run journals: log lines by the bytes the journal counted, artifacts by size.
    metrics.journalled(
      { kind: 'log', stream: 'stdout', level: 'info', lines: ['héllo', ''] },
      { lineBytes: 6 },
    );
    metrics.journalled(
      { kind: 'log-text', stream: 'stderr', level: 'info', text: 'ab\nc' },
      { lineBytes: 3 },
    );
    metrics.journalled(
      { kind: 'artifact', name: 'a', path: '/w/a', size: 96, sha256: 'x' },
      NO_LINES,
    );
    metrics.journalled({ kind: 'state', state: 'running' }, NO_LINES);
    metrics.pullDuration(1500);
    metrics.buildDuration(-5);
    let backlog = 7;
    metrics.journalBacklog(() => backlog);
    let exposition = await scrape(metrics);
    assert.equal(sampleValue(exposition, 'cuttle_log_sent_bytes_total'), 123 + 6 + 3);
    assert.equal(sampleValue(exposition, 'cuttle_artifact_sent_bytes_total'), 4096);
    assert.equal(sampleValue(exposition, 'cuttle_journal_backlog_events'), 7);
    assert.equal(sampleValue(exposition, 'cuttle_image_pull_duration_seconds_sum'), 1.5);
    assert.equal(sampleValue(exposition, 'cuttle_image_build_duration_seconds_sum'), 0);
    backlog = 0;
    exposition = await scrape(metrics);
    assert.equal(sampleValue(exposition, 'cuttle_journal_backlog_events'), 0);
    metrics.journalBacklog(3);
    assert.equal(sampleValue(await scrape(metrics), 'cuttle_journal_backlog_events'), 3);
  });
});

describe('parseListenAddress', () => {
  it('reads HOST:PORT, [IPv6]:PORT and host names', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenAddress('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
    assert.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 });
    assert.deepEqual(parseListenAddress('[::]:9464'), { host: '::', port: 9464 });
    assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseListenAddress('metrics.worker-1.internal:9464'), {
      host: 'metrics.worker-1.internal',
      port: 9464,
    });
  });

  it('refuses anything else with config-invalid, naming the flag and an example', () => {
    for (const text of [
      '9464',
      ':9464',
      '127.0.0.1',
      '127.0.0.1:',
      '127.0.0.1:65536',
      '127.0.0.1:http',
      '::1:9464',
      '[::1]',
      '[zz::1]:9464',
      '300.1.1.1:9464',
      'bad_host:9464',
      'http://127.0.0.1:9464',
      '',
    ]) {
      assert.throws(
        () => parseListenAddress(text),
        (error) =>
          error instanceof CuttleError &&
          error.code === 'config-invalid' &&
          error.message.startsWith('--metrics-listen: ') &&
          error.message.includes('127.0.0.1:9464'),
        text,
      );
      assert.equal(isListenAddress(text), false, text);
    }
  });

  it('formats URLs and knows loopback addresses', () => {
    assert.equal(httpUrl('::1', 80), 'http://[::1]:80');
    assert.equal(httpUrl('127.0.0.1', 9464), 'http://127.0.0.1:9464');
    assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost'));
    assert.ok(!isLoopback('0.0.0.0') && !isLoopback('10.0.0.5') && !isLoopback('::'));
  });
});
