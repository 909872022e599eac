#!/usr/bin/env bash
# Token merging (ToMe) on the runtime: speed and accuracy against r, side by side in one run.
# Usage: [ROUNDS=3] [RUNS=20] [FT_LIMIT=0] bench/run_merge_bench.sh BUILD [TRAINED_MODEL OUT [FT_EPOCHS=1]]
#   Speed: DeiT-Small/224 (random weights from `vitopt init`: the cost does not depend on them),
#   fp32, batch 1 and 32, 2 threads, r = 0 / 8 / 13 on every block, interleaved in ROUNDS rounds
#   (each round runs r = 0, 8, 13 back to back), medians per round, the range over rounds; the
#   speedup is the ratio of the two medians, with the range of the rounds' own ratios.
#   Accuracy (with a trained model, e.g. the vit-fmnist-56 preset, 197 tokens): test top-1 on the
#   runtime for r = 0..16 without retraining, the speedup of each r at batch SPEED_BATCH (default
#   32: a small model's batch-1 time is mostly synchronisation, not tokens) in the same run, then
#   `vitopt merge --finetune-epochs FT_EPOCHS` (on the first FT_LIMIT training images; 0: all) at
#   the smallest r reaching 1.5x and its top-1, and the same fine-tuning at r = 0 as the reference
#   (a model that is not fully trained gains from any fine-tuning: compare with that, not with the
#   model before it).
# Nothing else should run meanwhile (2-core machine, noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: run_merge_bench.sh BUILD [TRAINED_MODEL OUT [FT_EPOCHS]]}
model=${2:-}
out=${3:-}
ft_epochs=${4:-1}
ft_limit=${FT_LIMIT:-0}
speed_batch=${SPEED_BATCH:-32}
rounds=${ROUNDS:-3}
runs=${RUNS:-20}
vitopt="$build/bin/vitopt"
work=$(mktemp -d /tmp/vitopt-merge-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "date: $(date -u +%F)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  threads: 2  load: $(cut -d' ' -f1-3 /proc/loadavg)"

# bench: median p50 over rounds and the range, per (batch, r).
bench_rs() {  # file rs(comma) batches(comma) runs -> jsonl of {batch, r, round, p50_ms}
  local f=$1 rs=$2 batches=$3 n=$4
  for round in $(seq 1 "$rounds"); do
    for r in ${rs//,/ }; do
      "$vitopt" bench --model "$f" --batch "$batches" --threads 2 --runs "$n" --merge-r "$r" --json |
        /usr/bin/python3 -c 'import json,sys
for j in json.load(sys.stdin): print(json.dumps({"batch": j["batch"], "r": sys.argv[1], "round": int(sys.argv[2]), "p50_ms": j["p50_ms"]}))' "$r" "$round"
    done
  done
}
summarize='import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
for b in sorted({r["batch"] for r in rows}):
    base = [r["p50_ms"] for r in rows if r["batch"] == b and r["r"] == "0"]
    for rr in sorted({r["r"] for r in rows}, key=int):
        t = [r["p50_ms"] for r in rows if r["batch"] == b and r["r"] == rr]
        ratio = [x / y for x, y in zip(base, t)]
        print(f"| {sys.argv[2]} | {b} | {rr} | {st.median(t):.2f} ({min(t):.2f}-{max(t):.2f}) | "
              f"{st.median(base) / st.median(t):.2f}x ({min(ratio):.2f}-{max(ratio):.2f}) |")'

deit="$work/deit-small.safetensors"
"$vitopt" init --preset deit-small --out "$deit" --quiet >/dev/null
bench_rs "$deit" 0,8,13 1,32 "$runs" > "$work/deit.jsonl"
echo "| model | batch | r | runtime ms, median (range over $rounds rounds) | speedup vs r=0: ratio of the medians (range of the rounds' ratios) |"
echo "|---|---|---|---|---|"
/usr/bin/python3 -c "$summarize" "$work/deit.jsonl" deit-small

[ -n "$model" ] || exit 0
mkdir -p "$out"
echo
echo "accuracy: $model (test split, runtime engine, no retraining)"
rs=${RS:-0,4,8,12,16,20,24}
bench_rs "$model" "$rs" "$speed_batch" "$runs" > "$work/model.jsonl"
/usr/bin/python3 -c "$summarize" "$work/model.jsonl" "$(basename "$model")" > "$work/speed.md"
echo "| r | tokens per block | MMACs | top-1 % | batch-$speed_batch ms (range) | speedup (range) |"
echo "|---|---|---|---|---|---|"
best=""
for r in ${rs//,/ }; do
  "$vitopt" eval --model "$model" --engine runtime --merge-r "$r" --threads 2 --quiet --json > "$work/eval$r.json"
  line=$(grep "| $speed_batch | $r |" "$work/speed.md" | head -1)
  /usr/bin/python3 - "$work/eval$r.json" "$r" "$line" "$model" "$vitopt" <<'PY'
import json, subprocess, sys
j = json.load(open(sys.argv[1]))
top1 = j["models"][0]["classification"]["top1"]
info = json.loads(subprocess.check_output([sys.argv[5], "info", "--model", sys.argv[4], "--merge-r", sys.argv[2], "--json"]))
cells = sys.argv[3].split("|")
tokens = ",".join(map(str, info["tokens"]))
print(f"| {sys.argv[2]} | {tokens} | {info['macs'] / 1e6:.1f} | {100 * top1:.2f} | {cells[4].strip()} | {cells[5].strip()} |")
PY
  speed=$(echo "$line" | /usr/bin/python3 -c 'import sys; print(sys.stdin.read().split("|")[5].split("x")[0].strip())')
  if [ -z "$best" ] && /usr/bin/python3 -c "import sys; sys.exit(0 if float('$speed') >= 1.5 else 1)"; then best=$r; fi
done
[ -n "$best" ] || { echo "no r reached 1.5x at batch $speed_batch"; exit 0; }
echo
echo "fine-tuning: r = $best (smallest r with a median batch-$speed_batch speedup >= 1.5x) and r = 0, $ft_epochs epoch(s) with merging on, first $ft_limit training images (0: all)"
for r in 0 "$best"; do
  "$vitopt" merge --model "$model" --r "$r" --finetune-epochs "$ft_epochs" --limit "$ft_limit" \
    --out "$out/merged-r$r.safetensors" --threads 2 --json > "$out/merge-r$r.json"
  /usr/bin/python3 - "$out/merge-r$r.json" "$r" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"r = {sys.argv[2]}: top-1 unmerged {100 * j['original']['accuracy']['top1']:.2f}%, before fine-tuning "
      f"{100 * j['before_finetune']['top1']:.2f}%, after {100 * j['merged']['accuracy']['top1']:.2f}%; "
      f"speed {j['speed']['summary']}")
PY
done
