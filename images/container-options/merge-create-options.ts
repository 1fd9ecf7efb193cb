import type Docker from 'dockerode';
import type { TranslatedOptions } from './container-settings.js';
import { uniqueVariables } from './families/environment.js';
import { RESERVED_LABEL_PREFIX } from './families/runtime.js';

/**
 * The step's create options (from `toCreateOptions(spec)`) with the translated container options
 * merged in. The step's own settings always win: its command, entrypoint override, work-folder bind,
 * `dev.cuttle.*` labels, log config, init, and the non-interactive, not-auto-removed settings. Options add
 * to lists (binds, env, labels) and set everything else; `--workdir` and `--user` replace the step's.
 */
export function mergeIntoCreateOptions(
  base: Docker.ContainerCreateOptions,
  translated: TranslatedOptions,
): Docker.ContainerCreateOptions {
  const { config, hostConfig, networkingConfig, platform } = translated;
  const { Entrypoint: _entrypoint, Labels: userLabels, Env: userEnv, ...userConfig } = config;
  const { Binds: userBinds, LogConfig: _logConfig, ...userHostConfig } = hostConfig;

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
