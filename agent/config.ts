/**
 * The agent's configuration: one schema for the JSON file, the CUTTLE_* environment variables and
 * the flags (flags win over variables, variables over the file), with defaults in one place.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { CuttleError } from '../protocol/index.js';
import { isListenAddress, LISTEN_ADDRESS_HINT } from './listen-address.js';

export const DEFAULTS = {
  home: '/var/lib/cuttle',
  capacity: 2,
  allowInsecure: false,
  exitWhenDrained: false,
  graceSeconds: 600,
  logLevel: 'info',
  logFormat: 'text',
  allowHostExecution: true,
  maxArtifactBytes: 2 * 1024 * 1024 * 1024,
  packageCacheBytes: 10 * 1024 * 1024 * 1024,
  journalLimitBytes: 1024 * 1024 * 1024,
  toolImageMounts: false,
  toolVersionsKept: 3,
  toolImageRepository: 'octopusdeploy',
  toolImagePullPolicy: 'if-not-present',
  builtImagesMaxCount: 50,
  // The container options policy: safe by default (see docs/container-options.md); the lists
  // (allowedImages, allowedPullPolicies, prepull, allowedCapabilities, allowedBindMounts) are empty.
  allowPrivileged: false,
  allowHostNamespaces: false,
  allowDevices: false,
  allowUnconfined: false,
  allowVolumesFrom: false,
} as const;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

export const configSchema = z
  .object({
    server: z.string().url('must be a ws:// or wss:// URL'),
    token: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    home: z.string().min(1).default(DEFAULTS.home),
    name: z
      .string()
      .min(1)
      .default(() => hostname()),
    capacity: z.coerce.number().int().min(1).max(256).default(DEFAULTS.capacity),
    serverCertSha256: z
      .string()
      .regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'must be 64 hex digits, colons optional')
      .optional(),
    ca: z.string().min(1).optional(),
    allowInsecure: z.boolean().default(DEFAULTS.allowInsecure),
    exitWhenDrained: z.boolean().default(DEFAULTS.exitWhenDrained),
    graceSeconds: z.coerce.number().int().min(0).default(DEFAULTS.graceSeconds),
    logLevel: z.enum(LOG_LEVELS).default(DEFAULTS.logLevel),
    logFormat: z.enum(['text', 'json']).default(DEFAULTS.logFormat),
    allowHostExecution: z.boolean().default(DEFAULTS.allowHostExecution),
    maxArtifactBytes: z.coerce.number().int().min(0).default(DEFAULTS.maxArtifactBytes),
    packageCacheBytes: z.coerce.number().int().min(0).default(DEFAULTS.packageCacheBytes),
    toolImageMounts: z.boolean().default(DEFAULTS.toolImageMounts),
    toolVersionsKept: z.coerce.number().int().min(1).default(DEFAULTS.toolVersionsKept),
    toolImageRepository: z.string().min(1).default(DEFAULTS.toolImageRepository),
    toolImagePullPolicy: z
      .enum(['always', 'if-not-present', 'never'])
      .default(DEFAULTS.toolImagePullPolicy),
    metricsListen: z.string().refine(isListenAddress, `must be ${LISTEN_ADDRESS_HINT}`).optional(),
    journalLimitBytes: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .default(DEFAULTS.journalLimitBytes),
    allowedImages: z.array(z.string().min(1)).default(() => []),
    allowedPullPolicies: z.array(z.enum(['always', 'if-not-present', 'never'])).default(() => []),
    builtImagesMaxCount: z.coerce.number().int().min(1).default(DEFAULTS.builtImagesMaxCount),
    builtImagesMaxBytes: z.coerce.number().int().min(0).optional(),
    prepull: z.array(z.string().min(1)).default(() => []),
    allowPrivileged: z.boolean().default(DEFAULTS.allowPrivileged),
    allowHostNamespaces: z.boolean().default(DEFAULTS.allowHostNamespaces),
    allowedCapabilities: z.array(z.string().min(1)).default(() => []),
    allowDevices: z.boolean().default(DEFAULTS.allowDevices),
    allowUnconfined: z.boolean().default(DEFAULTS.allowUnconfined),
    allowedBindMounts: z
      .array(z.string().regex(/^\//, 'must be absolute host paths'))
      .default(() => []),
    allowVolumesFrom: z.boolean().default(DEFAULTS.allowVolumesFrom),
  })
  .strict();

export type AgentConfig = Omit<z.output<typeof configSchema>, 'token' | 'tokenFile'> & {
  token: string;
};

type ConfigKey = keyof z.input<typeof configSchema>;
const CONFIG_KEYS = Object.keys(configSchema.shape).filter(isConfigKey);
/** Lists: comma-separated in a variable, a repeated flag on the command line. */
const LIST_KEYS = new Set<string>([
  'allowedImages',
  'allowedPullPolicies',
  'prepull',
  'allowedCapabilities',
  'allowedBindMounts',
]);
const BOOLEAN_KEYS = new Set<string>([
  'allowInsecure',
  'exitWhenDrained',
  'allowHostExecution',
  'allowPrivileged',
  'allowHostNamespaces',
  'allowDevices',
  'allowUnconfined',
  'allowVolumesFrom',
  'toolImageMounts',
]);

function isConfigKey(key: string): key is ConfigKey {
  return key in configSchema.shape;
}

/** A configuration value is missing or wrong; the message names the key and where it came from. */
export class ConfigError extends CuttleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('config-invalid', message, options);
  }
}

/** `tokenFile` ↔ `--token-file` ↔ `CUTTLE_TOKEN_FILE`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z0-9]+/g, (m) => `-${m.toLowerCase()}`).replace(/sha-256/, 'sha256');
}
export function envName(key: string): string {
  return `CUTTLE_${flagName(key).replace(/-/g, '_').toUpperCase()}`;
}

export interface ConfigSources {
  /** Values from flags, already keyed by config key. */
  flags: Record<string, string | boolean | string[] | undefined>;
  env: NodeJS.ProcessEnv;
  /** --config FILE (or CUTTLE_CONFIG). */
  file?: string;
}

/** Merges file, environment and flags, validates, and resolves the token. */
export function loadConfig(sources: ConfigSources): AgentConfig {
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const file = sources.file ?? sources.env.CUTTLE_CONFIG;
  if (file !== undefined) {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      merged[key] = value;
      origin[key] = `${file}: "${key}"`;
    }
  }
  for (const key of CONFIG_KEYS) {
    const raw = sources.env[envName(key)];
    if (raw === undefined || raw === '') continue;
    merged[key] = BOOLEAN_KEYS.has(key)
      ? parseBoolean(raw, envName(key))
      : LIST_KEYS.has(key)
        ? raw
            .split(',')
            .map((item) => item.trim())
            .filter((item) => item !== '')
        : raw;
    origin[key] = envName(key);
  }
  for (const [key, value] of Object.entries(sources.flags)) {
    if (value === undefined) continue;
    merged[key] = value;
    origin[key] = `--${flagName(key)}`;
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${origin[k] ?? k}: unknown key${suggest(k)}`).join('; ');
      }
      const key = String(issue.path[0] ?? '');
      const where = origin[key] ?? `${key} (--${flagName(key)} or ${envName(key)})`;
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${messages.join('; ')}`, { cause: parsed.error });
  }
  const { token, tokenFile, ...rest } = parsed.data;
  return { ...rest, token: resolveToken(token, tokenFile) };
}

function resolveToken(token: string | undefined, tokenFile: string | undefined): string {
  if (token !== undefined && tokenFile !== undefined) {
    throw new ConfigError('give either token (--token) or tokenFile (--token-file), not both');
  }
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, 'utf8').trim();
    } catch (error) {
      throw new ConfigError(`tokenFile: cannot read ${tokenFile}`, { cause: error });
    }
    if (text === '') throw new ConfigError(`tokenFile: ${tokenFile} is empty`);
    return text;
  }
  if (token === undefined) {
    throw new ConfigError(
      'token: required; give --token, --token-file, CUTTLE_TOKEN or "token" in the config file',
    );
  }
  return token;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`--config: cannot read ${path}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${String(error)})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${path}: must hold a JSON object of settings`);
  }
  return Object.fromEntries(Object.entries(value));
}

function parseBoolean(raw: string, name: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name}: "${raw}" is not a boolean; use true or false`);
}

function suggest(key: string): string {
  const best = closest(key, CONFIG_KEYS);
  return distance(key.toLowerCase(), best.toLowerCase()) <= Math.max(2, key.length / 3)
    ? ` (did you mean "${best}"?)`
    : '';
}
