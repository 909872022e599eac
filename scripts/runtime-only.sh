#!/usr/bin/env bash
# CI step: the runtime without LibTorch. Builds the `runtime-only` preset (core, io, data,
# runtime, infer, vitopt-rt; find_package(Torch) disabled) into build/runtime-only, runs the
# vitopt-rt tests (incl. its `ldd`), installs it into build/runtime-only/install, then builds the
# consumer project (tests/consumer) against that install with find_package(vitopt) and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh runtime-only
# The other LibTorch-free tests already ran in the release and sanitizer builds (same sources).
ctest --preset runtime-only -j 2 -R '^cli_rt_tests\.'
prefix=$PWD/build/runtime-only/install
rm -rf "$prefix"
cmake --install build/runtime-only >/dev/null
cmake -S tests/consumer -B build/runtime-only/consumer -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/runtime-only/consumer
model=tests/fuzz/corpus/fuzz_runtime_loader/fp32.safetensors  # a tiny valid model file
build/runtime-only/consumer/vitopt_consumer "$model"
"$prefix/bin/vitopt-rt" info --model "$model" >/dev/null
if ldd "$prefix/bin/vitopt-rt" | grep -E 'libtorch|libc10'; then
  echo "runtime-only: the installed vitopt-rt links LibTorch" >&2
  exit 1
fi
echo "runtime-only: build, install and consumer OK"
