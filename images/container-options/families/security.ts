// Security and namespaces: --cap-add, --cap-drop, --privileged, --security-opt, --userns, --pid,
// --uts, --cgroupns, --ipc and --group-add.
import type { OptionsContext, TranslatedOptions } from '../container-settings.js';
import { invalid, type Flags } from '../given-flags.js';
import { describeError, readStepFile } from '../step-files.js';
import { trimSpace } from '../value-syntax.js';

/**
 * The client's normalizeCapabilities: blanks trimmed, upper case, `CAP_` prefix (but `ALL`), no
 * duplicates, sorted.
 */
export function normalizeCapabilities(caps: string[]): string[] {
  const normalized = new Set<string>();
  for (const cap of caps) {
    const upper = trimSpace(cap).toUpperCase();
    normalized.add(upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`);
  }
  return [...normalized].sort();
}

export function translateSecurity(
  flags: Flags,
  { hostConfig }: TranslatedOptions,
  ctx: OptionsContext,
): void {
  const capAdd = flags.values('cap-add');
  if (capAdd.length > 0) hostConfig.CapAdd = normalizeCapabilities(capAdd);
  const capDrop = flags.values('cap-drop');
  if (capDrop.length > 0) hostConfig.CapDrop = normalizeCapabilities(capDrop);
  if (flags.boolean('privileged') === true) hostConfig.Privileged = true;

  const securityOpt: string[] = [];
  for (const occurrence of flags.all('security-opt')) {
    const opt = occurrence.value;
    if (opt === 'systempaths=unconfined') {
      hostConfig.MaskedPaths = [];
      hostConfig.ReadonlyPaths = [];
      continue;
    }
    let separator = opt.indexOf('=');
    if (separator === -1 && opt !== 'no-new-privileges') separator = opt.indexOf(':');
    const key = separator === -1 ? opt : opt.slice(0, separator);
    const val = separator === -1 ? '' : opt.slice(separator + 1);
    if ((separator === -1 || val === '') && key !== 'no-new-privileges') {
      throw invalid(occurrence, `invalid --security-opt: ${JSON.stringify(opt)}`);
    }
    if (key === 'seccomp' && val !== 'builtin' && val !== 'unconfined') {
      const text = readStepFile({ ...occurrence, value: val }, ctx, 'seccomp profile');
      let profile: unknown;
      try {
        profile = JSON.parse(text);
      } catch (error) {
        throw invalid(
          occurrence,
          `compacting json for seccomp profile (${val}) failed: ${describeError(error)}`,
        );
      }
      securityOpt.push(`seccomp=${JSON.stringify(profile)}`);
      continue;
    }
    securityOpt.push(opt);
  }
  if (securityOpt.length > 0) hostConfig.SecurityOpt = securityOpt;

  const modes = [
    ['userns', 'UsernsMode', ['', 'host'], false, 'USER'],
    ['pid', 'PidMode', ['', 'host'], true, 'PID'],
    ['uts', 'UTSMode', ['', 'host'], false, 'UTS'],
    ['cgroupns', 'CgroupnsMode', ['', 'host', 'private'], false, 'CGROUP'],
  ] as const;
  for (const [name, key, allowed, container, label] of modes) {
    const occurrence = flags.last(name);
    if (occurrence === undefined) continue;
    const mode = occurrence.value;
    const validContainer = container && /^container:.+$/.test(mode);
    if (!allowed.some((a) => a === mode) && !validContainer) {
      throw invalid(
        occurrence,
        `--${name}: invalid ${label} mode (use ${allowed.filter((a) => a !== '').join(' or ')}${container ? ' or container:<name|id>' : ''})`,
      );
    }
    if (mode !== '') hostConfig[key] = mode;
  }
  const ipc = flags.nonEmpty('ipc');
  if (ipc !== undefined) hostConfig.IpcMode = ipc;
  const groups = flags.values('group-add');
  if (groups.length > 0) hostConfig.GroupAdd = groups;
}
