#!/usr/bin/env bash
# Quick start, second command: prepares the machine if needed, then runs every check CI runs:
# type check, lint, format, build, unit and integration tests (real Docker engine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
npm test
