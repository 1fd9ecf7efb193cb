/**
 * The helpers a step's shell has before its script runs (PROTOCOL.md section 5), compatible with
 * Calamari's bash helpers so existing Octopus scripts run unchanged. POSIX sh: they work in bash,
 * dash and busybox sh. Variables are read from a file in the step's control folder (removed with
 * the work folder), never from the container's environment or command line.
 */
import { shellQuote } from './shell-quote.js';

export function helpersScript(variablesFile: string): string {
  const file = shellQuote(variablesFile);
  return `# cuttle script helpers (Calamari-compatible). Every service message value is base64 of its UTF-8 bytes.
__cuttle_b64() { printf '%s' "$1" | base64 | tr -d '\\n'; }

get_octopusvariable() {
  __cuttle_key=$(printf '%s' "$1" | tr 'A-Z' 'a-z' | base64 | tr -d '\\n')
  while read -r __cuttle_name __cuttle_value; do
    if [ "$__cuttle_name" = "$__cuttle_key" ]; then
      printf '%s' "$__cuttle_value" | base64 -d
      return 0
    fi
  done < ${file}
  return 0
}

set_octopusvariable() {
  __cuttle_sensitive=False
  if [ "\${3:-}" = "-sensitive" ]; then __cuttle_sensitive=True; fi
  printf "##octopus[setVariable name='%s' value='%s' sensitive='%s']\\n" "$(__cuttle_b64 "$1")" "$(__cuttle_b64 "\${2:-}")" "$(__cuttle_b64 "$__cuttle_sensitive")"
}

new_octopusartifact() {
  __cuttle_path=$1
  case "$__cuttle_path" in /*) ;; *) __cuttle_path="$PWD/$__cuttle_path" ;; esac
  __cuttle_artifact_name=\${2:-$(basename "$__cuttle_path")}
  __cuttle_length=0
  # stat reads the size from the inode; wc -c (the fallback, for images without stat) reads the
  # whole file, which took busybox 2.5 s per GB.
  if [ -f "$__cuttle_path" ]; then
    __cuttle_length=$(stat -c %s "$__cuttle_path" 2>/dev/null || wc -c < "$__cuttle_path" | tr -d ' ')
  fi
  printf "##octopus[createArtifact path='%s' name='%s' length='%s']\\n" "$(__cuttle_b64 "$__cuttle_path")" "$(__cuttle_b64 "$__cuttle_artifact_name")" "$(__cuttle_b64 "$__cuttle_length")"
}

fail_step() {
  printf "##octopus[resultMessage message='%s']\\n" "$(__cuttle_b64 "\${1:-}")"
  exit 1
}

update_progress() {
  printf "##octopus[progress percentage='%s' message='%s']\\n" "$(__cuttle_b64 "$1")" "$(__cuttle_b64 "\${2:-}")"
}

__cuttle_write() {
  printf '##octopus[stdout-%s]\\n' "$1"
  printf '%s\\n' "$2"
  printf '##octopus[stdout-default]\\n'
}
write_verbose() { __cuttle_write verbose "$1"; }
write_highlight() { __cuttle_write highlight "$1"; }
write_wait() { __cuttle_write wait "$1"; }
write_warning() { __cuttle_write warning "$1"; }
`;
}

/** One line per variable: base64 of the ASCII-lower-cased name, a space, base64 of the value. */
export function variablesFileContent(
  variables: readonly { name: string; value: string }[],
): string {
  return variables
    .map(
      (v) =>
        `${Buffer.from(asciiLower(v.name)).toString('base64')} ${Buffer.from(v.value).toString('base64')}\n`,
    )
    .join('');
}

/** Names match case-insensitively; `tr A-Z a-z` in the helper lower-cases ASCII only, so must this. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
}
