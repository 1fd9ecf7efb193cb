#!/usr/bin/env bash
# Quick start, first command: prepares the machine if needed, then runs one real step in a real
# container end to end (reference server in-process, agent with a throwaway home).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/agent/cli.js try
