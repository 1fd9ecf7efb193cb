/**
 * The opt-in HTTP endpoint of `--metrics-listen HOST:PORT`: `/metrics` (Prometheus text format),
 * `/healthz` (200 while the process answers) and `/readyz` (200 when connected to the server and
 * the Docker engine is reachable, else 503 with the reasons as JSON). Read-only, no secrets: the
 * metrics carry no task ids, names or variables.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CuttleError } from '../protocol/index.js';
import { httpUrl } from './listen-address.js';
import type { AgentMetrics, Readiness } from './metrics.js';

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port; `url` tells which. */
  port: number;
  metrics: AgentMetrics;
  /** The readiness to answer `/readyz` with; by default what the agent reported to `metrics`. */
  ready?: () => Readiness;
}

export interface MetricsServer {
  /** `http://HOST:PORT` as bound (the real port when 0 was asked). */
  readonly url: string;
  /** Stops listening and closes open connections (keep-alive scrapers included). */
  close(): Promise<void>;
}

/** How long a slow or stuck client may hold a request open. */
const REQUEST_TIMEOUT_MS = 10_000;

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { metrics } = options;
  const ready = options.ready ?? (() => metrics.readiness());
  const server = createServer((request, response) => {
    handle(request, response, metrics, ready).catch((error: unknown) => {
      send(response, 500, 'text/plain; charset=utf-8', `cannot render: ${String(error)}\n`);
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const where = `${options.host}:${options.port}`;
      const why =
        error.code === 'EADDRINUSE'
          ? 'the address is already in use'
          : error.code === 'EADDRNOTAVAIL'
            ? 'no interface of this machine has that address'
            : error.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
                ? 'the host name does not resolve'
                : error.message;
      reject(
        new CuttleError('config-invalid', `--metrics-listen ${where}: cannot listen: ${why}`, {
          cause: error,
        }),
      );
    };
    server.once('error', onError);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? portOf(address) : options.port;
  let closing: Promise<void> | undefined;
  return {
    url: httpUrl(options.host, port),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function portOf(address: AddressInfo): number {
  return address.port;
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  metrics: AgentMetrics,
  ready: () => Readiness,
): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz' || path === '/';
  if (!known) {
    send(
      response,
      404,
      'text/plain; charset=utf-8',
      'not found: try /metrics, /healthz, /readyz\n',
    );
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  switch (path) {
    case '/metrics':
      send(response, 200, metrics.contentType, await metrics.text());
      return;
    case '/healthz':
      send(response, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz': {
      const state = ready();
      const reasons = [
        ...(state.connected ? [] : ['not connected to the server']),
        ...(state.engine ? [] : ['the Docker engine is not reachable']),
      ];
      const body = { ready: reasons.length === 0, ...state, reasons };
      send(
        response,
        reasons.length === 0 ? 200 : 503,
        'application/json',
        `${JSON.stringify(body)}\n`,
      );
      return;
    }
    default:
      send(response, 200, 'text/plain; charset=utf-8', 'cuttle agent: /metrics /healthz /readyz\n');
  }
}

function send(response: ServerResponse, status: number, type: string, body: string): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  response.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
