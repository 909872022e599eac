#!/usr/bin/env bash
# The README's test command: install deps, build, run every test (ctest), then a bounded fuzz run
# of the model loader if clang's libFuzzer is available. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
ctest --preset release -j 2 "$@"
