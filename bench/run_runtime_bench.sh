#!/usr/bin/env bash
# End-to-end inference table, side by side in one run, same thread count (2), random weights:
#   vitopt runtime (fp32 files from `vitopt init`, int8/int4 files synthesized by bench_runtime's
#   writer when `vitopt quantize` is not built), LibTorch eager (vitopt bench --engine torch),
#   PyTorch 1.13 eager fp32 and dynamic int8 (peers/torch_infer.py), ONNX Runtime (npm
#   onnxruntime-node, peers/ort_infer.cjs) on a torch.onnx.export of the same model.
# Usage: [RUNS=20] [BATCHES=1,32] bench/run_runtime_bench.sh [build-dir] [presets...]
#   (nothing else should run meanwhile; BATCHES=1 keeps vit-base-16 to a few minutes)
# Prints a Markdown table (median latency ms, images/s) and the ratios the goals are stated in.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
shift || true
presets=${*:-vit-fmnist deit-tiny deit-small}
threads=2
runs=${RUNS:-20}
batches=${BATCHES:-1,32}
vitopt="$build/bin/vitopt"
work=$(mktemp -d /tmp/vitopt-runtime-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
if grep -qw avx512bw /proc/cpuinfo; then blas=SkylakeX; else blas=Haswell; fi
peer_env=(env OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=$blas OPENBLAS_NUM_THREADS=$threads)

# ONNX Runtime from the npm registry, cached under the build folder (--ignore-scripts: the CPU
# binaries ship inside the package; the install script only fetches GPU providers).
ort_dir="$build/peers"
if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ] && command -v npm >/dev/null; then
  mkdir -p "$ort_dir"
  npm install --prefix "$ort_dir" --no-audit --no-fund --ignore-scripts onnxruntime-node@1.30.0 >/dev/null 2>&1 ||
    echo "note: npm install onnxruntime-node failed; ONNX Runtime column skipped" >&2
fi

echo "date: $(date -u +%F)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  threads: $threads  load: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results.jsonl"
for p in $presets; do
  f="$work/$p.safetensors"
  "$vitopt" init --preset "$p" --out "$f" --quiet >/dev/null
  if [ "$p" = vit-fmnist ]; then shape='[1,28,28]'; else shape='[3,224,224]'; fi
  # vitopt runtime and LibTorch on the same file, then the peers on the same shapes.
  "$vitopt" bench --model "$f" --batch "$batches" --threads $threads --engine runtime,torch --runs "$runs" --json |
    /usr/bin/python3 -c 'import json,sys
for r in json.load(sys.stdin):
    r["preset"]=sys.argv[1]; r["engine"]={"runtime":"vitopt-fp32","torch":"libtorch-fp32"}[r["engine"]]; print(json.dumps(r))' "$p" >> "$results"
  "$build/bin/bench_runtime" --benchmark_filter="Runtime/$p/int[48]/batch:(${batches//,/|})/" --benchmark_min_time=2 --benchmark_format=json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys
for b in json.load(sys.stdin)["benchmarks"]:
    _, preset, prec, batch = b["name"].split("/")[:4]
    n = int(batch.split(":")[1]); ms = b["real_time"]
    print(json.dumps({"preset": preset, "engine": "vitopt-"+prec, "batch": n, "p50_ms": ms, "images_per_s": 1000*n/ms}))' >> "$results"
  "${peer_env[@]}" /usr/bin/python3 bench/peers/torch_infer.py --model "$f" --batch "$batches" --threads $threads \
    --runs "$runs" --int8 --export-onnx "$work/$p.onnx" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l); r["preset"]=sys.argv[1]; print(json.dumps(r))' "$p" >> "$results"
  if [ -d "$ort_dir/node_modules/onnxruntime-node" ]; then
    ORT_MODULE="$(realpath "$ort_dir")/node_modules/onnxruntime-node" ORT_INPUT_SHAPE="$shape" \
      node bench/peers/ort_infer.cjs "$work/$p.onnx" "$batches" $threads "$runs" |
      /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l); r["preset"]=sys.argv[1]; print(json.dumps(r))' "$p" >> "$results"
  fi
done
/usr/bin/python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if "p50_ms" in r]
engines = ["vitopt-fp32", "vitopt-int8", "vitopt-int4", "libtorch-fp32", "torch-fp32", "torch-int8-dynamic", "onnxruntime"]
get = {(r["preset"], r["engine"], r["batch"]): r for r in rows}
presets = sorted({r["preset"] for r in rows}, key=lambda p: ["vit-fmnist", "deit-tiny", "deit-small", "vit-base-16"].index(p))
for batch in (1, 32):
    print(f"\n| batch {batch}: median ms (img/s) | " + " | ".join(engines) + " |")
    print("|---" * (len(engines) + 1) + "|")
    for p in presets:
        cells = []
        for e in engines:
            r = get.get((p, e, batch))
            cells.append(f"{r['p50_ms']:.2f} ({r['images_per_s']:.0f})" if r else "-")
        print(f"| {p} | " + " | ".join(cells) + " |")
print("\nratios (batch 1 median latency):")
for p in presets:
    def ms(e, b=1):
        r = get.get((p, e, b)); return r["p50_ms"] if r else float("nan")
    print(f"  {p}: runtime fp32 / PyTorch fp32 = {ms('vitopt-fp32')/ms('torch-fp32'):.3f}; "
          f"runtime fp32 / ONNX Runtime = {ms('vitopt-fp32')/ms('onnxruntime'):.3f}; "
          f"runtime int8 / PyTorch fp32 = {ms('vitopt-int8')/ms('torch-fp32'):.3f}; "
          f"runtime int4 / runtime int8 = {ms('vitopt-int4')/ms('vitopt-int8'):.3f}; "
          f"batch-32 throughput runtime fp32 / PyTorch fp32 = {ms('torch-fp32',32)/ms('vitopt-fp32',32):.2f}x")
PY
