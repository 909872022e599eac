#!/usr/bin/env bash
# Low-rank factorization and weight sharing on a trained model, the measurements of BENCHMARKS.md
# "Low-rank factorization and weight sharing": factorization to half the blocks' Linear weights
# (activation-aware vs plain SVD before fine-tuning, top-1 after fine-tuning with the original as
# teacher), runtime latency against the parameter ratio, factorized + W8A8 against W8A8 alone, and
# 6 blocks shared in 3 groups (attention and MLP, with and without per-block low-rank deltas, and
# the MLP alone: top-1 before and after weight distillation, file size, runtime memory).
# Usage: bench/run_lowrank_bench.sh BUILD_DIR MODEL OUT_DIR [FACTORIZE_FT_EPOCHS] [SHARE_FT_EPOCHS]
# PARTS=factorize,share (default both) runs a part alone; DELTA_RANK (default 16) is the delta
# variant's rank. Takes ~30 min on 2 cores for vit-fmnist with 1 and 1 epochs (2026-12-02, Zen 5),
# plus ~7 min per further fine-tuning epoch of each shared variant. Nothing else should run meanwhile.
set -euo pipefail
build=$1 model=$2 out=$3 fe=${4:-1} se=${5:-2}
parts=${PARTS:-factorize,share} dr=${DELTA_RANK:-16}
v=$build/bin/vitopt
rt=$build/bin/vitopt-rt
mkdir -p "$out"
models=("$model")
if [[ $parts == *factorize* ]]; then
  # Half of the blocks' Linear weights: budget = all params - (Linear weights / 2).
  budget=$($v info --model "$model" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
C = j["config"]["embed_dim"]
linear = sum(3 * C * b["heads"] * j["config"]["head_dim"] + C * b["heads"] * j["config"]["head_dim"]
             + 2 * C * b["mlp_dim"] for b in j["blocks"])
print(j["params"] - linear // 2)')
  echo "param budget: $budget"
  # --keep-slower: the budget is the point of this row; without it a layer whose factorized form
  # times slower (or only noisily faster) on this machine is excluded and the budget can be out of
  # reach. The latency table below measures what the chosen ranks cost.
  $v factorize --model "$model" --param-budget "$budget" --method activation-aware --keep-slower \
    --finetune-epochs "$fe" --distill --quiet --out "$out/lowrank50.safetensors"
  for r in 0.125 0.25 0.5; do
    $v factorize --model "$model" --rank-ratio $r --keep-slower --no-measure --quiet \
      --out "$out/ratio$r.safetensors"
  done
  $v quantize --model "$model" --wbits 8 --abits 8 --quiet --out "$out/w8a8.safetensors"
  $v quantize --model "$out/lowrank50.safetensors" --wbits 8 --abits 8 --quiet \
    --out "$out/lowrank50-w8a8.safetensors"
  models+=("$out/ratio0.125.safetensors" "$out/ratio0.25.safetensors" "$out/ratio0.5.safetensors"
           "$out/lowrank50.safetensors" "$out/w8a8.safetensors" "$out/lowrank50-w8a8.safetensors")
fi
if [[ $parts == *share* ]]; then
  # share.json of each has the top-1 before and after fine-tuning, file sizes and runtime memory.
  $v share --model "$model" --groups auto --num-groups 3 --finetune-epochs "$se" --quiet \
    --out "$out/shared3.safetensors"
  $v share --model "$model" --groups auto --num-groups 3 --delta-rank "$dr" --finetune-epochs "$se" \
    --quiet --out "$out/shared3-delta$dr.safetensors"
  $v share --model "$model" --groups auto --num-groups 3 --what mlp --finetune-epochs "$se" --quiet \
    --out "$out/shared3-mlp.safetensors"
  models+=("$out/shared3.safetensors" "$out/shared3-delta$dr.safetensors" "$out/shared3-mlp.safetensors")
fi
for m in "${models[@]}"; do
  $v eval --model "$m" --engine runtime --json --quiet > "$out/$(basename "$m" .safetensors).eval.json"
done
$rt bench -m "${models[@]}" -b 1,32 --runs 300 --json > "$out/bench.json"
for m in "${models[@]}"; do echo "$(basename "$m") $($v info --model "$m" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])')"; done > "$out/params.txt"
echo "results in $out (lowrank50_factorize/factorize.json, shared3*_share/share.json, *.eval.json, bench.json)"
