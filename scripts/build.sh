#!/usr/bin/env bash
# Installs dependencies (idempotent) and builds the release preset. Usage: scripts/build.sh [preset]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
bash scripts/install-deps.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Two cores: LibTorch TUs need ~1 GB each, so two jobs is also the memory-safe choice.
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
