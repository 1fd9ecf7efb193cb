// Octopus.Action.Container.Options: parsed like a `docker run` command line, translated to the
// Engine API settings the docker CLI would send, checked against the worker's policy, and merged
// into a step container's create options. See docs/container-options.md.
export type {
  BindMount,
  ContainerCreateConfig,
  HostConfigSettings,
  NetworkingSettings,
  OptionsContext,
  TranslatedOptions,
} from './container-settings.js';
export { OptionsForbiddenError, OptionsInvalidError } from './options-errors.js';
export { OPTION_TABLE, type OptionDefinition } from './option-table.js';
export { splitWords } from './split-words.js';
export { translateContainerOptions } from './translate-options.js';
export {
  DEFAULT_OPTIONS_POLICY,
  POLICY_SETTINGS,
  SAFE_CAPABILITIES,
  SENSITIVE_HOST_PATHS,
  checkOptionsPolicy,
  type OptionsPolicy,
} from './options-policy.js';
export { mergeIntoCreateOptions } from './merge-create-options.js';
