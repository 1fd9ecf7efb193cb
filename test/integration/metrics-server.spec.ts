import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { AgentMetrics } from '../../agent/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../agent/metrics-server.js';
import { CuttleError } from '../../protocol/index.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request over a fresh connection, or over `agent`'s (keep-alive) ones. */
function fetchText(url: string, method = 'GET', agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent });
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('metrics server', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves /metrics in the Prometheus text format, as the agent reports', async () => {
    const metrics = new AgentMetrics({ version: '9.9.9' });
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, metrics });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    metrics.taskStarted('t1');
    metrics.logBytes(42);
    const reply = await fetchText(`${server.url}/metrics`);
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.equal(reply.headers['cache-control'], 'no-store');
    const exposition = parsePrometheusText(reply.body);
    assert.equal(sampleValue(exposition, 'cuttle_tasks_running'), 1);
    assert.equal(sampleValue(exposition, 'cuttle_log_sent_bytes_total'), 42);
    assert.equal(sampleValue(exposition, 'cuttle_agent_info', { version: '9.9.9' }), 1);
    assert.ok(exposition.samples.some((s) => s.name === 'process_cpu_user_seconds_total'));
    // A query string (some scrapers add one) is ignored.
    assert.equal((await fetchText(`${server.url}/metrics?name[]=up`)).status, 200);
  });

  it('answers /healthz while alive and /readyz from the connection and the engine', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, metrics });
    const health = await fetchText(`${server.url}/healthz`);
    assert.deepEqual([health.status, health.body], [200, 'ok\n']);

    let ready = await fetchText(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(ready.body), {
      ready: false,
      connected: false,
      engine: false,
      reasons: ['not connected to the server', 'the Docker engine is not reachable'],
    });

    metrics.connectionState(true);
    ready = await fetchText(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(JSON.parse(ready.body), {
      ready: false,
      connected: true,
      engine: false,
      reasons: ['the Docker engine is not reachable'],
    });

    metrics.engineAvailable(true);
    ready = await fetchText(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), {
      ready: true,
      connected: true,
      engine: true,
      reasons: [],
    });

    metrics.connectionState(false);
    assert.equal((await fetchText(`${server.url}/readyz`)).status, 503);
    assert.equal((await fetchText(`${server.url}/healthz`)).status, 200);
  });

  it('takes readiness from a callback when given one', async () => {
    let state = { connected: true, engine: false };
    server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new AgentMetrics({ defaultMetrics: false }),
      ready: () => state,
    });
    assert.equal((await fetchText(`${server.url}/readyz`)).status, 503);
    state = { connected: true, engine: true };
    assert.equal((await fetchText(`${server.url}/readyz`)).status, 200);
  });

  it('answers HEAD, refuses other methods with 405 and unknown paths with 404', async () => {
    server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new AgentMetrics({ defaultMetrics: false }),
    });
    const head = await fetchText(`${server.url}/metrics`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 100);
    const post = await fetchText(`${server.url}/metrics`, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const missing = await fetchText(`${server.url}/admin`);
    assert.equal(missing.status, 404);
    assert.match(missing.body, /\/metrics/);
  });

  it('fails with config-invalid when the address is taken, and frees it on close', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, metrics });
    const port = Number(new URL(server.url).port);
    await assert.rejects(
      startMetricsServer({ host: '127.0.0.1', port, metrics }),
      (error) =>
        error instanceof CuttleError &&
        error.code === 'config-invalid' &&
        error.message ===
          `--metrics-listen 127.0.0.1:${port}: cannot listen: the address is already in use`,
    );
    // A keep-alive scraper's open connection does not hold close() up.
    const keepAlive = new Agent({ keepAlive: true });
    await fetchText(`${server.url}/healthz`, 'GET', keepAlive);
    const closing = Date.now();
    await server.close();
    assert.ok(Date.now() - closing < 1000, 'close() waited for a keep-alive connection');
    keepAlive.destroy();
    await server.close();
    server = await startMetricsServer({ host: '127.0.0.1', port, metrics });
    assert.equal((await fetchText(`${server.url}/healthz`)).status, 200);
  });

  it('refuses an address no interface has', async () => {
    await assert.rejects(
      startMetricsServer({
        host: '192.0.2.123', // TEST-NET-1: never assigned
        port: 0,
        metrics: new AgentMetrics({ defaultMetrics: false }),
      }),
      (error) =>
        error instanceof CuttleError &&
        error.code === 'config-invalid' &&
        /no interface of this machine has that address/.test(error.message),
    );
  });

  it('listens on IPv6 loopback with a bracketed URL', async function () {
    const probe = createServer();
    const hasV6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen({ host: '::1', port: 0 }, () => probe.close(() => resolve(true)));
    });
    if (!hasV6) this.skip();
    server = await startMetricsServer({
      host: '::1',
      port: 0,
      metrics: new AgentMetrics({ defaultMetrics: false }),
    });
    assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
    assert.equal((await fetchText(`${server.url}/healthz`)).status, 200);
  });
});
