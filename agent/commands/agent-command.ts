/** `cuttle agent`: the daemon. */
import { parseArgs } from 'node:util';
import { withFlagErrors } from '../parse-flags.js';
import { Agent } from '../agent.js';
import { loadConfig, type AgentConfig } from '../config.js';
import { createLogger } from '../logger.js';
import type { AgentMetrics } from '../metrics.js';
import type { MetricsServer } from '../metrics-server.js';
import { parseListenAddress } from '../listen-address.js';
import { agentVersion } from '../version.js';

export const AGENT_FLAGS = {
  config: { type: 'string' },
  server: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  home: { type: 'string' },
  name: { type: 'string' },
  capacity: { type: 'string' },
  'server-cert-sha256': { type: 'string' },
  ca: { type: 'string' },
  'allow-insecure': { type: 'boolean' },
  'exit-when-drained': { type: 'boolean' },
  'grace-seconds': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'allow-host-execution': { type: 'boolean' },
  'no-host-execution': { type: 'boolean' },
  'max-artifact-bytes': { type: 'string' },
  'package-cache-bytes': { type: 'string' },
  'journal-limit-bytes': { type: 'string' },
  'metrics-listen': { type: 'string' },
  'allowed-image': { type: 'string', multiple: true },
  'allowed-pull-policy': { type: 'string', multiple: true },
  'built-images-max-count': { type: 'string' },
  'built-images-max-bytes': { type: 'string' },
  prepull: { type: 'string', multiple: true },
  'allow-privileged': { type: 'boolean' },
  'allow-host-namespaces': { type: 'boolean' },
  'allow-capability': { type: 'string', multiple: true },
  'allow-devices': { type: 'boolean' },
  'allow-unconfined': { type: 'boolean' },
  'allow-bind-mount': { type: 'string', multiple: true },
  'allow-volumes-from': { type: 'boolean' },
} as const;

/** Reads the flags of `agent` (and `config check`) into a validated configuration. */
export function configFromArgs(args: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const { values } = withFlagErrors(AGENT_FLAGS, () =>
    parseArgs({
      args,
      options: AGENT_FLAGS,
      strict: true,
      allowPositionals: false,
    }),
  );
  return loadConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    env,
    flags: {
      server: values.server,
      token: values.token,
      tokenFile: values['token-file'],
      home: values.home,
      name: values.name,
      capacity: values.capacity,
      serverCertSha256: values['server-cert-sha256'],
      ca: values.ca,
      allowInsecure: values['allow-insecure'],
      exitWhenDrained: values['exit-when-drained'],
      graceSeconds: values['grace-seconds'],
      logLevel: values['log-level'],
      logFormat: values['log-format'],
      allowHostExecution:
        values['no-host-execution'] === true ? false : values['allow-host-execution'],
      maxArtifactBytes: values['max-artifact-bytes'],
      packageCacheBytes: values['package-cache-bytes'],
      journalLimitBytes: values['journal-limit-bytes'],
      metricsListen: values['metrics-listen'],
      allowedImages: values['allowed-image'],
      allowedPullPolicies: values['allowed-pull-policy'],
      builtImagesMaxCount: values['built-images-max-count'],
      builtImagesMaxBytes: values['built-images-max-bytes'],
      prepull: values.prepull,
      allowPrivileged: values['allow-privileged'],
      allowHostNamespaces: values['allow-host-namespaces'],
      allowedCapabilities: values['allow-capability'],
      allowDevices: values['allow-devices'],
      allowUnconfined: values['allow-unconfined'],
      allowedBindMounts: values['allow-bind-mount'],
      allowVolumesFrom: values['allow-volumes-from'],
    },
  });
}

export async function agentCommand(args: string[]): Promise<number> {
  const config = configFromArgs(args, process.env);
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const served =
    config.metricsListen === undefined ? undefined : await serveMetrics(config.metricsListen);
  if (served !== undefined) logger.info('serving metrics', { url: `${served.server.url}/metrics` });
  const metrics = served?.metrics;
  const metricsServer = served?.server;
  const agent = await Agent.start(config, logger, { metrics });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) {
        // A second SIGTERM or SIGINT: the operator does not want to wait for the grace period.
        if (why !== 'drained') agent.cancelAll();
        return;
      }
      stopping = true;
      logger.info(`${why}: stopping`);
      agent.shutdown().then(
        async () => {
          await metricsServer?.close();
          resolve(0);
        },
        (error: unknown) => {
          logger.error('shutdown failed', { error: String(error) });
          resolve(1);
        },
      );
    };
    // SIGHUP re-reads the file, the variables and the same flags, and applies what is safe.
    process.on('SIGHUP', () => {
      try {
        agent.reload(configFromArgs(args, process.env));
      } catch (error) {
        logger.error('the configuration was not reloaded', {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    agent.once('exit', () => stop('drained'));
  });
}

/** Metrics and their HTTP server, loaded only when asked for: an agent without them is smaller. */
async function serveMetrics(
  listen: string,
): Promise<{ metrics: AgentMetrics; server: MetricsServer }> {
  const { AgentMetrics } = await import('../metrics.js');
  const { startMetricsServer } = await import('../metrics-server.js');
  const metrics = new AgentMetrics({ version: agentVersion(), defaultMetrics: true });
  const server = await startMetricsServer({ ...parseListenAddress(listen), metrics });
  return { metrics, server };
}
