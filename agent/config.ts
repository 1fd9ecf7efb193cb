/**
 * The agent's configuration: one schema for the JSON file, the CUTTLE_* environment variables and
 * the flags (flags win over variables, variables over the file), with defaults in one place.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { closest, distance } from 'fastest-levenshtein';
import * as v from 'valibot';
import { CuttleError, READABLE_ISSUES } from '../protocol/index.js';
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

const PULL_POLICIES = ['always', 'if-not-present', 'never'] as const;
const nonEmpty = v.pipe(v.string(), v.minLength(1));
const nonEmptyList = v.optional(v.array(nonEmpty), () => []);
/**
 * A number from a file, a variable or a flag: the text is converted as `Number()` does, then must
 * be a safe integer of at least `min` (what zod's `z.coerce.number().int().min()` did).
 */
const countFrom = (min: number) =>
  v.pipe(
    v.unknown(),
    v.transform((value) => Number(value)),
    v.number(),
    v.safeInteger(),
    v.minValue(min),
  );

export const configSchema = v.strictObject({
  // Checked and kept trimmed, with tabs and newlines taken out, as zod's `.url()` did.
  server: v.pipe(
    v.string(),
    v.trim(),
    v.url('must be a ws:// or wss:// URL'),
    v.transform((url) => url.replace(/[\t\n\r]/g, '')),
  ),
  token: v.optional(nonEmpty),
  tokenFile: v.optional(nonEmpty),
  home: v.optional(nonEmpty, DEFAULTS.home),
  name: v.optional(nonEmpty, () => hostname()),
  capacity: v.optional(v.pipe(countFrom(1), v.maxValue(256)), DEFAULTS.capacity),
  serverCertSha256: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'must be 64 hex digits, colons optional'),
    ),
  ),
  ca: v.optional(nonEmpty),
  allowInsecure: v.optional(v.boolean(), DEFAULTS.allowInsecure),
  exitWhenDrained: v.optional(v.boolean(), DEFAULTS.exitWhenDrained),
  graceSeconds: v.optional(countFrom(0), DEFAULTS.graceSeconds),
  logLevel: v.optional(v.picklist(LOG_LEVELS), DEFAULTS.logLevel),
  logFormat: v.optional(v.picklist(['text', 'json']), DEFAULTS.logFormat),
  allowHostExecution: v.optional(v.boolean(), DEFAULTS.allowHostExecution),
  maxArtifactBytes: v.optional(countFrom(0), DEFAULTS.maxArtifactBytes),
  packageCacheBytes: v.optional(countFrom(0), DEFAULTS.packageCacheBytes),
  toolImageMounts: v.optional(v.boolean(), DEFAULTS.toolImageMounts),
  toolVersionsKept: v.optional(countFrom(1), DEFAULTS.toolVersionsKept),
  toolImageRepository: v.optional(nonEmpty, DEFAULTS.toolImageRepository),
  toolImagePullPolicy: v.optional(v.picklist(PULL_POLICIES), DEFAULTS.toolImagePullPolicy),
  metricsListen: v.optional(
    v.pipe(v.string(), v.check(isListenAddress, `must be ${LISTEN_ADDRESS_HINT}`)),
  ),
  journalLimitBytes: v.optional(countFrom(1024 * 1024), DEFAULTS.journalLimitBytes),
  allowedImages: nonEmptyList,
  allowedPullPolicies: v.optional(v.array(v.picklist(PULL_POLICIES)), () => []),
  builtImagesMaxCount: v.optional(countFrom(1), DEFAULTS.builtImagesMaxCount),
  builtImagesMaxBytes: v.optional(countFrom(0)),
  prepull: nonEmptyList,
  allowPrivileged: v.optional(v.boolean(), DEFAULTS.allowPrivileged),
  allowHostNamespaces: v.optional(v.boolean(), DEFAULTS.allowHostNamespaces),
  allowedCapabilities: nonEmptyList,
  allowDevices: v.optional(v.boolean(), DEFAULTS.allowDevices),
  allowUnconfined: v.optional(v.boolean(), DEFAULTS.allowUnconfined),
  allowedBindMounts: v.optional(
    v.array(v.pipe(v.string(), v.regex(/^\//, 'must be absolute host paths'))),
    () => [],
  ),
  allowVolumesFrom: v.optional(v.boolean(), DEFAULTS.allowVolumesFrom),
});

export type AgentConfig = Omit<v.InferOutput<typeof configSchema>, 'token' | 'tokenFile'> & {
  token: string;
};

type ConfigKey = keyof v.InferInput<typeof configSchema>;
const CONFIG_KEYS = Object.keys(configSchema.entries).filter(isConfigKey);
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
  return key in configSchema.entries;
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
  const parsed = v.safeParse(configSchema, merged, READABLE_ISSUES);
  if (!parsed.success) {
    const messages = parsed.issues.map((issue) => {
      if (issue.type === 'strict_object' && issue.expected === 'never') {
        // valibot reports the first unknown key; name them all.
        return Object.keys(merged)
          .filter((k) => !Object.hasOwn(configSchema.entries, k))
          .map((k) => `${origin[k] ?? k}: unknown key${suggest(k)}`)
          .join('; ');
      }
      const first = issue.path?.[0]?.key;
      const key = typeof first === 'string' ? first : '';
      const where = origin[key] ?? `${key} (--${flagName(key)} or ${envName(key)})`;
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${messages.join('; ')}`, {
      cause: new v.ValiError(parsed.issues),
    });
  }
  const { token, tokenFile, ...rest } = parsed.output;
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
