#!/usr/bin/env bash
# Circuit discovery against structured pruning on a trained model, the measurements of
# BENCHMARKS.md "Circuit discovery": the time of one node-level and one edge-level ACDC run and of
# the EAP-IG scores, then for ACDC, EAP (task loss), EAP-IG, Taylor and L2 head/neuron pruning the
# setting closest to 70% and to 50% of the baseline's MACs, with its test top-1 before and after
# one fine-tuning epoch (on the first FT_LIMIT training images; 0: all 60k), KL to the baseline on
# 256 training images, parameters and runtime latency at batch 1.
# Usage: bench/run_circuits_bench.sh BUILD_DIR MODEL OUT_DIR [FT_LIMIT]
# ~45 min on 2 cores for vit-fmnist with FT_LIMIT 20000. Nothing else should run meanwhile.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/circuits_bench.py" "$1" "$2" "$3" "${4:-20000}"
