#!/usr/bin/env bash
# Test setup (CTest fixture onnxruntime): installs npm onnxruntime-node@1.30.0 into
# BUILD_DIR/peers like bench/run_runtime_bench.sh (--ignore-scripts: the CPU binaries ship in the
# package; its install script only fetches GPU providers). Without npm it does nothing: the ONNX
# tests then skip with a message. With npm, a failed install fails this setup test.
set -euo pipefail
dir="$1/peers"
if [ -f "$dir/node_modules/onnxruntime-node/package.json" ]; then exit 0; fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "npm/node not found: ONNX Runtime comparisons will be skipped"; exit 0
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts onnxruntime-node@1.30.0
