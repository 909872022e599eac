#!/usr/bin/env bash
# The README's test command: install deps, build the release preset, run every test (ctest: one
# test per GoogleTest case, labels unit/kernels/parity/e2e). Extra arguments go to ctest
# (e.g. -L unit). Exit status is non-zero on any failure. The sanitizer build, the libFuzzer runs,
# the runtime-only build and the format check are separate steps of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
ctest --preset release -j 2 "$@"
