#!/usr/bin/env bash
# Compares this checkout with another commit on the same machine in the same minutes: builds that
# commit in a temporary git worktree (sharing this checkout's node_modules), then runs the given
# bench cases alternately, base first, and prints each table row prefixed with `base` or `this`.
# This machine's speed moves by a third within the hour (docs/benchmarks.md), so a change is
# judged against the build before it run alongside, not against figures from another run.
#
#   scripts/bench-ab.sh [--rounds N] BASE_COMMIT CASES     e.g. scripts/bench-ab.sh HEAD~1 logs
#
# Environment such as BENCH_QUICK=1 or BENCH_AGENT_NODE_ARGS passes through to both sides. The base
# is built with this checkout's node_modules: a base whose dependencies differ needs its own.
set -euo pipefail
cd "$(dirname "$0")/.."
usage='usage: scripts/bench-ab.sh [--rounds N] BASE_COMMIT CASES'
rounds=3
if [ "${1:-}" = "--rounds" ]; then
  rounds=${2:?$usage}
  shift 2
fi
base=${1:?$usage}
cases=${2:?$usage}

worktree=$(mktemp -d /tmp/cuttle-bench-base-XXXXXX)
trap 'git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"' EXIT
git worktree add --detach "$worktree" "$base" >/dev/null
ln -s "$PWD/node_modules" "$worktree/node_modules"
echo "building $base in $worktree, and this checkout" >&2
(cd "$worktree" && npm run --silent build)
npm run --silent build

# Table rows start with the case's name; headers, goals and notes do not.
rows="^(${cases//,/|}) "
for round in $(seq 1 "$rounds"); do
  for side in base this; do
    dir=$PWD
    [ "$side" = base ] && dir=$worktree
    echo "round $round of $rounds: $side" >&2
    (cd "$dir" && BENCH_CASES=$cases node dist/bench/run.js) | { grep -E "$rows" || true; } |
      sed "s/^/$side  /"
  done
done
