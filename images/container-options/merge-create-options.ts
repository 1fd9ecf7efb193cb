import { posix } from 'node:path';
import type Docker from 'dockerode';
import type { TranslatedOptions } from './container-settings.js';
import { uniqueVariables } from './families/environment.js';
import { volumeTarget } from './families/mounts.js';
import { isInside } from './host-paths.js';
import { OptionsInvalidError } from './options-errors.js';
import { RESERVED_LABEL_PREFIX } from './families/runtime.js';

/**
 * The step's create options (from `toCreateOptions(spec)`) with the translated container options
 * merged in. The step's own settings always win: its command, entrypoint override, work-folder bind,
 * `dev.cuttle.*` labels, log config, init, and the non-interactive, not-auto-removed settings. Options add
 * to lists (binds, mounts, env, labels) and set everything else; `--workdir` and `--user` replace the
 * step's. Throws OptionsInvalidError (`options-invalid`) for an option that mounts something at or
 * inside one of the step's own mounts.
 */
export function mergeIntoCreateOptions(
  base: Docker.ContainerCreateOptions,
  translated: TranslatedOptions,
): Docker.ContainerCreateOptions {
  const { config, hostConfig, networkingConfig, platform } = translated;
  const { Entrypoint: _entrypoint, Labels: userLabels, Env: userEnv, ...userConfig } = config;
  const {
    Binds: userBinds,
    Mounts: userMounts,
    LogConfig: _logConfig,
    ...userHostConfig
  } = hostConfig;
  refuseHiddenStepMounts(base, translated);

  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(userLabels ?? {})) {
    if (!key.startsWith(RESERVED_LABEL_PREFIX)) labels[key] = value;
  }
  Object.assign(labels, base.Labels ?? {});

  const baseHost = base.HostConfig ?? {};
  // Object.assign's intersection type keeps dockerode's (narrower) field types satisfied while the
  // values are the Engine API's; the step's own fields are assigned last so they win.
  const mergedHost = Object.assign({}, baseHost, userHostConfig, {
    Binds: [...(baseHost.Binds ?? []), ...(userBinds ?? [])],
    // The step's own first: its tool is mounted from an image at /cuttle/tool.
    ...(baseHost.Mounts === undefined && userMounts === undefined
      ? {}
      : { Mounts: [...(baseHost.Mounts ?? []), ...(userMounts ?? [])] }),
    ...(baseHost.LogConfig === undefined ? {} : { LogConfig: baseHost.LogConfig }),
    ...(baseHost.AutoRemove === undefined ? {} : { AutoRemove: baseHost.AutoRemove }),
    // The step's init forwards a cancel's SIGTERM; `--init=false` must not take it away.
    ...(baseHost.Init === undefined ? {} : { Init: baseHost.Init }),
  });

  const merged = Object.assign({}, base, userConfig, {
    // Options' variables replace the step's of the same name; each variable appears once.
    Env: uniqueVariables([...(base.Env ?? []), ...(userEnv ?? [])]),
    Labels: labels,
    HostConfig: mergedHost,
    ...(base.Cmd === undefined ? {} : { Cmd: base.Cmd }),
    ...(base.Entrypoint === undefined ? {} : { Entrypoint: base.Entrypoint }),
    ...(base.Image === undefined ? {} : { Image: base.Image }),
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
  });
  if (networkingConfig !== undefined) merged.NetworkingConfig = networkingConfig;
  if (platform !== undefined) merged.platform = platform;
  return merged;
}

/**
 * Throws OptionsInvalidError when an option mounts something at or inside one of the step's own
 * mount targets (its folder, its tool): the engine would refuse a duplicate, and a mount inside
 * would hide the launcher, the output files or the tool.
 */
function refuseHiddenStepMounts(
  base: Docker.ContainerCreateOptions,
  { config, hostConfig }: TranslatedOptions,
): void {
  const baseHost = base.HostConfig ?? {};
  const stepTargets = [
    ...(baseHost.Binds ?? []).map((spec) => volumeTarget(spec)),
    ...(baseHost.Mounts ?? []).map((mount) => mount.Target),
  ].flatMap((target) => (target === undefined || target === '' ? [] : [cleanTarget(target)]));
  const optionTargets: [option: string, target: string | undefined][] = [
    ...(hostConfig.Binds ?? []).map((spec): [string, string | undefined] => [
      `-v ${spec}`,
      volumeTarget(spec),
    ]),
    ...(hostConfig.Mounts ?? []).map((mount): [string, string] => [
      `--mount target=${mount.Target}`,
      mount.Target,
    ]),
    ...Object.keys(hostConfig.Tmpfs ?? {}).map((target): [string, string] => [
      `--tmpfs ${target}`,
      target,
    ]),
    ...Object.keys(config.Volumes ?? {}).map((target): [string, string] => [
      `-v ${target}`,
      target,
    ]),
  ];
  for (const [option, target] of optionTargets) {
    if (target === undefined) continue;
    const hidden = stepTargets.find((stepTarget) => isInside(cleanTarget(target), stepTarget));
    if (hidden !== undefined) {
      throw new OptionsInvalidError(
        `Option ${option} in Octopus.Action.Container.Options would hide the step's own mount at ${hidden}: mount it elsewhere.`,
        option,
      );
    }
  }
}

/** A container path as the engine cleans it: `/a//b/` is `/a/b`. */
function cleanTarget(target: string): string {
  const clean = posix.normalize(target);
  return clean.length > 1 && clean.endsWith('/') ? clean.slice(0, -1) : clean;
}
