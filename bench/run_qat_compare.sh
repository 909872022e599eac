#!/usr/bin/env bash
# QAT with STE vs LSQ (learned step sizes), side by side on one trained vit-fmnist: for each weight
# width, PTQ alone, then the same PTQ followed by the same QAT run with fixed scales (STE) and with
# learned scales (--lsq); top-1 on the full Fashion-MNIST test split. Prints a Markdown table with
# the command, date and CPU, for BENCHMARKS.md.
# Usage: bench/run_qat_compare.sh [model.safetensors] [build-dir]
#   (no model: trains vit-fmnist for 5 epochs into runs/qat-compare/train first, ~35 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-}
build=${2:-build/release}
vitopt="$build/bin/vitopt"
out=runs/qat-compare
mkdir -p "$out"
if [ -z "$model" ]; then
  "$vitopt" train --preset vit-fmnist --data fashion-mnist --epochs 5 --seed 0 --quiet \
    --out "$out/train" $( [ -f "$out/train/checkpoint.safetensors" ] && echo --resume )
  model="$out/train/best.safetensors"
fi
qat_epochs=${QAT_EPOCHS:-1}
qat_images=${QAT_IMAGES:-20000}
top1() { /usr/bin/python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["top1"]))'; }
run() {  # name, extra flags...
  local name=$1; shift
  "$vitopt" quantize --model "$model" --data fashion-mnist --abits 8 --seed 0 --json "$@" \
    --out "$out/$name.safetensors" 2>/dev/null | top1
}
echo "Command: bench/run_qat_compare.sh $model  (QAT_EPOCHS=$qat_epochs QAT_IMAGES=$qat_images)"
echo "Date: $(date -u +%F)  CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| W/A bits | PTQ top-1 | QAT STE top-1 | QAT LSQ top-1 |"
echo "|---|---|---|---|"
for w in ${BITS:-4 3}; do
  ptq=$(run "w${w}-ptq" --wbits "$w")
  ste=$(run "w${w}-ste" --wbits "$w" --qat-epochs "$qat_epochs" --qat-images "$qat_images")
  lsq=$(run "w${w}-lsq" --wbits "$w" --qat-epochs "$qat_epochs" --qat-images "$qat_images" --lsq)
  echo "| W${w}A8 | $ptq% | $ste% | $lsq% |"
done
