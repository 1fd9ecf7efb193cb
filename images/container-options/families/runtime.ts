// How the container runs: --stop-signal, --stop-timeout, --entrypoint, labels, the healthcheck,
// --init, --sysctl, --runtime, --isolation, --annotation, logging, --restart and --platform.
import type { HealthConfig, OptionsContext, TranslatedOptions } from '../container-settings.js';
import { invalid, parsed, type Flags } from '../given-flags.js';
import type { FlagOccurrence } from '../parse-flags.js';
import { parseKeyValueFile, readStepFile } from '../step-files.js';
import { parseBoolean, parseDuration, parseInt64 } from '../units.js';
import { setKeyValue, splitKeyValue } from '../value-syntax.js';

/** Labels under this prefix are cuttle's own; options cannot set them. */
export const RESERVED_LABEL_PREFIX = 'dev.cuttle.';

const SYSCTL_NAMES = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

export function translateStop(flags: Flags, { config }: TranslatedOptions): void {
  const stopSignal = flags.nonEmpty('stop-signal');
  if (stopSignal !== undefined) config.StopSignal = stopSignal;
  const stopTimeout = flags.number('stop-timeout', parseInt64);
  if (stopTimeout !== undefined) config.StopTimeout = stopTimeout;
}

export function translateEntrypoint(flags: Flags, { config, warnings }: TranslatedOptions): void {
  const entrypoint = flags.last('entrypoint');
  if (entrypoint === undefined) return;
  config.Entrypoint = [entrypoint.value];
  warnings.push(
    `${entrypoint.written} is ignored: cuttle runs the step's script as the container's command, with no entrypoint.`,
  );
}

export function translateLabels(
  flags: Flags,
  { config, warnings }: TranslatedOptions,
  ctx: OptionsContext,
): void {
  const entries: { entry: string; occurrence: FlagOccurrence }[] = [];
  for (const occurrence of flags.all('label-file')) {
    const text = readStepFile(occurrence, ctx, 'label file');
    // The CLI keeps a bare key in a label file as a label with an empty value... only via -l; in
    // files it drops it (no lookup function), and so does cuttle.
    for (const entry of parseKeyValueFile(occurrence, text, () => undefined)) {
      entries.push({ entry, occurrence });
    }
  }
  for (const occurrence of flags.all('label')) {
    const [key] = splitKeyValue(occurrence.value);
    const trimmed = key.replace(/^[ \t]+/, '');
    if (trimmed === '')
      throw invalid(occurrence, `invalid label '${occurrence.value}': empty name`);
    if (/[ \t]/.test(trimmed)) throw invalid(occurrence, `label '${key}' contains whitespaces`);
    entries.push({ entry: occurrence.value, occurrence });
  }
  if (entries.length === 0) return;
  const labels: Record<string, string> = {};
  for (const { entry, occurrence } of entries) {
    const [key] = splitKeyValue(entry);
    if (key.startsWith(RESERVED_LABEL_PREFIX)) {
      warnings.push(
        `${occurrence.written}: labels starting with ${RESERVED_LABEL_PREFIX} are cuttle's own; ${key} is ignored.`,
      );
      continue;
    }
    setKeyValue(labels, entry);
  }
  config.Labels = labels;
}

export function translateHealthcheck(flags: Flags, { config, warnings }: TranslatedOptions): void {
  const command = flags.string('health-cmd') ?? '';
  const durations = [
    ['health-interval', 'Interval'],
    ['health-timeout', 'Timeout'],
    ['health-start-period', 'StartPeriod'],
    ['health-start-interval', 'StartInterval'],
  ] as const;
  const health: HealthConfig = {};
  let any = command !== '';
  for (const [name, key] of durations) {
    const occurrence = flags.last(name);
    if (occurrence === undefined) continue;
    const value = parsed(occurrence, parseDuration);
    if (value < 0) throw invalid(occurrence, `--${name} cannot be negative`);
    if (value !== 0) {
      health[key] = value;
      any = true;
    }
  }
  if (health.StartInterval !== undefined) {
    warnings.push(
      '--health-start-interval needs Docker Engine API 1.44 or later; older engines ignore it.',
    );
  }
  const retries = flags.last('health-retries');
  if (retries !== undefined) {
    const value = parsed(retries, parseInt64);
    if (value < 0) throw invalid(retries, '--health-retries cannot be negative');
    if (value !== 0) {
      health.Retries = value;
      any = true;
    }
  }
  const none = flags.last('no-healthcheck');
  if (none !== undefined && parsed(none, parseBoolean)) {
    if (any) throw invalid(none, '--no-healthcheck conflicts with --health-* options');
    config.Healthcheck = { Test: ['NONE'] };
    return;
  }
  if (!any) return;
  if (command !== '') health.Test = ['CMD-SHELL', command];
  config.Healthcheck = health;
}

/** --init, --sysctl, --runtime, --isolation and --annotation. */
export function translateRuntime(flags: Flags, { hostConfig, warnings }: TranslatedOptions): void {
  const init = flags.boolean('init');
  if (init !== undefined) hostConfig.Init = init;
  const sysctls = flags.all('sysctl');
  if (sysctls.length > 0) {
    hostConfig.Sysctls = {};
    for (const occurrence of sysctls) {
      const [key, value] = splitKeyValue(occurrence.value);
      if (
        value === undefined ||
        key === '' ||
        !(SYSCTL_NAMES.has(key) || /^(net\.|fs\.mqueue\.)/.test(key))
      ) {
        throw invalid(
          occurrence,
          `sysctl '${occurrence.value}' is not allowed (only namespaced ones: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)`,
        );
      }
      hostConfig.Sysctls[key] = value;
    }
  }
  const runtime = flags.nonEmpty('runtime');
  if (runtime !== undefined) hostConfig.Runtime = runtime;
  const isolation = flags.nonEmpty('isolation');
  if (isolation !== undefined) hostConfig.Isolation = isolation;
  const annotations = flags.values('annotation');
  if (annotations.length > 0) {
    hostConfig.Annotations = {};
    warnings.push('--annotation needs Docker Engine API 1.43 or later; older engines ignore it.');
    for (const annotation of annotations) setKeyValue(hostConfig.Annotations, annotation);
  }
}

export function translateLogging(flags: Flags, { hostConfig, warnings }: TranslatedOptions): void {
  const logDriver = flags.last('log-driver');
  const logOpts = flags.all('log-opt');
  if (logDriver === undefined && logOpts.length === 0) return;
  const type = logDriver?.value ?? '';
  if (logDriver !== undefined && type === 'none' && logOpts.length > 0) {
    throw invalid(logDriver, `invalid logging opts for driver ${type}`);
  }
  const config: Record<string, string> = {};
  for (const occurrence of logOpts) setKeyValue(config, occurrence.value);
  hostConfig.LogConfig = { Type: type, Config: config };
  const written = [logDriver, ...logOpts].flatMap((o) => (o === undefined ? [] : [o.written]));
  warnings.push(
    `${written.join(' ')} ignored: cuttle reads the step's output from files and runs step containers with the "none" log driver.`,
  );
}

export function translateRestart(flags: Flags): void {
  const restart = flags.last('restart');
  if (restart !== undefined && restart.value !== '' && restart.value !== 'no') {
    throw invalid(
      restart,
      'a step container must not restart: it runs the step once and cuttle collects its exit code (only --restart no is accepted)',
    );
  }
}

/** `--platform`, sent as the create request's `platform` query parameter. */
export function translatePlatform(flags: Flags, out: TranslatedOptions): void {
  const platform = flags.nonEmpty('platform');
  if (platform !== undefined) out.platform = platform;
}
