#!/usr/bin/env bash
# CI step: the LibTorch-free layers (core, io, data, runtime, infer, vitopt-rt) built by clang with
# ASan + UBSan (preset `sanitize`, build/sanitize), their tests run under the sanitizers, then
# every libFuzzer target for a bounded time from its seed corpus (tests/fuzz/fuzz.cmake).
# Usage: scripts/sanitize.sh [SECONDS per fuzz target, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
bash scripts/install-deps.sh >/dev/null
cmake --preset sanitize -DVITOPT_FUZZ_SECONDS="$seconds" >/dev/null
bash scripts/build.sh sanitize
ctest --preset sanitize -j 2 -LE fuzz
ctest --preset sanitize -j 2 -L fuzz
