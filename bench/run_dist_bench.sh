#!/usr/bin/env bash
# Data-parallel training on this machine, and a projection to 8 machines:
#   1. vit-fmnist training throughput: 1 process x 2 threads vs 2 processes x 1 thread
#      (`vitopt launch`, loopback Gloo), same global batch;
#   2. the gradient all-reduce time per step (GradientSync, 2 ranks on loopback) for vit-fmnist
#      and DeiT-Small gradients;
#   3. a PROJECTION (not a measurement) of the speed-up on 1..8 machines from those times.
# Usage: bench/run_dist_bench.sh [build-dir] [images]   (nothing else may run meanwhile)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
images=${2:-8192}
vitopt="$build/bin/vitopt"
batch=128
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rate() {  # train_images_per_s of the run folder's last epoch
  /usr/bin/python3 -c 'import json,sys; print("%.1f" % json.loads(open(sys.argv[1]).read().splitlines()[-1])["train_images_per_s"])' "$1/metrics.jsonl"
}
train=(train --preset vit-fmnist --data fashion-mnist --limit "$images" --batch-size $batch
       --epochs 1 --warmup-epochs 0 --no-val --workers 1 --seed 1 --quiet)

echo "date: $(date -u +%F)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)"
"$vitopt" "${train[@]}" --threads 2 --out "$tmp/one"
one=$(rate "$tmp/one")
"$vitopt" launch --quiet --nproc-per-node 2 --threads 1 --master "127.0.0.1:$(port)" -- "${train[@]}" --out "$tmp/two"
two=$(rate "$tmp/two")
printf '| vit-fmnist training, global batch %d | images/s |\n|---|---|\n' $batch
printf '| 1 process x 2 threads | %s |\n| 2 processes x 1 thread (Gloo, loopback) | %s |\n' "$one" "$two"

# DeiT-Small's compute rate (1 process x 2 threads, a few small steps on synthetic 224x224 data).
"$vitopt" train --preset deit-small --data synthetic --limit 64 --batch-size 16 --epochs 1 \
  --warmup-epochs 0 --no-val --workers 1 --seed 1 --quiet --threads 2 --out "$tmp/deit"
deit=$(rate "$tmp/deit")
printf '| deit-small training, batch 16, 1 process x 2 threads | %s |\n' "$deit"

for model in vit-fmnist deit-small; do
  "$vitopt" launch --quiet --nproc-per-node 2 --threads 1 --master "127.0.0.1:$(port)" -- \
    "$build/bin/bench_allreduce" "$model" 20 | tail -n 1 > "$tmp/ar-$model.json"
done
printf '\n| gradients (2 ranks, loopback) | params | MB | buckets | all-reduce ms/step |\n|---|---|---|---|---|\n'
for model in vit-fmnist deit-small; do
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("| %s | %d | %.1f | %d | %.2f |" % (j["model"], j["params"], j["gradient_bytes"]/1e6, j["buckets"], j["allreduce_ms"]))' "$tmp/ar-$model.json"
done

# Projection: weak scaling (each machine keeps a batch of $batch, the global batch grows with W).
# Compute per step = batch / (1-process images/s). Ring all-reduce moves 2(W-1)/W of the gradient
# bytes per rank plus 2(W-1) latencies: the loopback figures give an effective bandwidth; a
# 10 Gb/s Ethernet line (1.25 GB/s, 50 us per message) is shown beside it. Two bounds: no overlap
# (compute + communication) and full overlap with backward (max of the two).
/usr/bin/python3 - "$one" "$tmp/ar-vit-fmnist.json" "$tmp/ar-deit-small.json" $batch "$deit" <<'PY'
import json, sys
one = float(sys.argv[1]); batch = int(sys.argv[4]); deit = float(sys.argv[5])
print("\nPROJECTION (computed from the measurements above, not measured on 8 machines):")
for path in sys.argv[2:4]:
    j = json.load(open(path))
    if j["model"] == "vit-fmnist":
        compute = batch / one
        label = "vit-fmnist, measured compute %.1f ms/step" % (compute * 1e3)
    else:
        compute = batch / deit
        label = "deit-small, batch %d per machine, measured compute %.0f ms/step" % (batch, compute * 1e3)
    bytes_ = j["gradient_bytes"]; t2 = j["allreduce_ms"] / 1e3
    bw_loop = bytes_ / max(t2, 1e-9)
    print("\n%s; gradients %.1f MB" % (label, bytes_ / 1e6))
    print("| machines | comm ms (loopback bw) | speed-up no/full overlap | comm ms (10 GbE) | speed-up no/full overlap |")
    print("|---|---|---|---|---|")
    for w in (1, 2, 4, 8):
        row = ["%d" % w]
        for bw, alpha in ((bw_loop, 0.0), (1.25e9, 50e-6)):
            comm = 0.0 if w == 1 else 2 * (w - 1) / w * bytes_ / bw + 2 * (w - 1) * alpha * j["buckets"]
            no = w * compute / (compute + comm); full = w * compute / max(compute, comm)
            row += ["%.2f" % (comm * 1e3), "%.2fx / %.2fx" % (no, full)]
        print("| " + " | ".join(row) + " |")
PY
