#!/usr/bin/env bash
# The README's main-job command: install deps, build, run `vitopt pipeline` on the default recipe
# (or the recipe given as first argument).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
exec ./build/release/bin/vitopt pipeline "$@"
