#!/usr/bin/env bash
# Training with fused attention against the plain path (issue 19): whole training steps of the
# real trainer (`vitopt train`, forward + label-smoothed CE + backward + clipping + AdamW) at 197
# tokens (preset vit-fmnist-56 and a DeiT-Tiny-width variant of it), batch 64, 2 threads, on
# LIMIT Fashion-MNIST training images; ROUNDS rounds alternating plain / fused; images/s from the
# trainer's own report, peak memory as the process's max RSS (/usr/bin/time). Then the operator
# alone (fused_attention_bench). Nothing else should run meanwhile.
# Usage: [ROUNDS=3] [LIMIT=1280] bench/run_attention_bench.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
rounds=${ROUNDS:-3}
limit=${LIMIT:-1280}
vitopt="$build/bin/vitopt"
work=$(mktemp -d /tmp/vitopt-attention-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "date: $(date -u +%F)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  threads: 2  load: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results.jsonl"
for shape in "vit-fmnist-56" "vit-fmnist-56 --dim 192 --heads 3 --mlp 768"; do
  for round in $(seq 1 "$rounds"); do
    for mode in plain fused; do
      /usr/bin/time -f '%M' -o "$work/rss" "$vitopt" train --preset $shape --data fashion-mnist --limit "$limit" \
        --batch-size 64 --epochs 1 --no-val --threads 2 --attention "$mode" --out "$work/run-$mode" --json > "$work/train.json"
      /usr/bin/python3 - "$work/train.json" "$work/rss" "$shape" "$mode" "$round" >> "$results" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ips = j["history"][-1]["train_images_per_s"]  # the last epoch's training speed
print(json.dumps({"shape": sys.argv[3], "mode": sys.argv[4], "round": int(sys.argv[5]),
                  "images_per_s": ips, "rss_mb": int(open(sys.argv[2]).read().split()[-1]) / 1024}))
PY
      rm -rf "$work/run-$mode"
    done
  done
done
/usr/bin/python3 - "$results" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| model (197 tokens, batch 64) | attention | ms per step, median (range) | peak RSS MB, median (range) |")
print("|---|---|---|---|")
for shape in dict.fromkeys(r["shape"] for r in rows):
    for mode in ("plain", "fused"):
        sel = [r for r in rows if r["shape"] == shape and r["mode"] == mode]
        ms = [64000 / r["images_per_s"] for r in sel]
        mb = [r["rss_mb"] for r in sel]
        print(f"| {shape} | {mode} | {st.median(ms):.0f} ({min(ms):.0f}-{max(ms):.0f}) | "
              f"{st.median(mb):.0f} ({min(mb):.0f}-{max(mb):.0f}) |")
PY
echo
"$build/bin/fused_attention_bench" 2
