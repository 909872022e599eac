#!/usr/bin/env bash
# Installs dependencies (idempotent) and builds the release preset. Usage: scripts/build.sh [preset]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
bash scripts/install-deps.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Relative paths in the cache key let clones in other folders reuse each other's objects; the
# sloppiness lets ccache cache TUs that use the LibTorch precompiled header.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
# Two cores: LibTorch TUs need ~1 GB each, so two jobs is also the memory-safe choice.
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
