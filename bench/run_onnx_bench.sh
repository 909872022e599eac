#!/usr/bin/env bash
# ONNX Runtime on vitopt's own ONNX exports next to the vitopt runtime (issue 21): the model as
# fp32 and as W8A8 (per-channel int8 weights, static int8 inputs; exported as QDQ), each run by
# `vitopt-rt bench` and by ONNX Runtime (npm onnxruntime-node, CPU provider, all graph
# optimizations, bench/peers/ort_infer.cjs) at the same thread count, batch 1 and 32, the four
# alternating in ROUNDS rounds. Prints a Markdown table (median of the rounds' p50s, range) with
# the command, date and CPU, for BENCHMARKS.md.
# Usage: bench/run_onnx_bench.sh MODEL [BUILD_DIR] [ROUNDS] [THREADS]
#   ONNX Runtime comes from BUILD_DIR/peers/node_modules (the ONNX tests install it there), or
#   ORT_MODULE=/path/to/node_modules/onnxruntime-node.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1
build=${2:-build/release}
rounds=${3:-5}
threads=${4:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export ORT_MODULE=${ORT_MODULE:-$PWD/$build/peers/node_modules/onnxruntime-node}
[ -d "$ORT_MODULE" ] || { echo "no onnxruntime-node at $ORT_MODULE (run the ONNX tests once)" >&2; exit 2; }
v="$build/bin/vitopt"
"$v" quantize --model "$model" --wbits 8 --abits 8 --data fashion-mnist --no-eval --quiet \
  --out "$out/w8a8.safetensors" >/dev/null
"$v" export --model "$model" --format onnx --quiet --out "$out/fp32.onnx"
"$v" export --model "$out/w8a8.safetensors" --format onnx --quiet --out "$out/w8a8.onnx"
shape=$("$v" info --model "$model" --json | /usr/bin/python3 -c \
  'import json,sys; c=json.load(sys.stdin)["config"]; print([c["in_channels"], c["image_size"], c["image_size"]])')
for r in $(seq "$rounds"); do
  for kind in fp32 w8a8; do
    file=$([ $kind = fp32 ] && echo "$model" || echo "$out/w8a8.safetensors")
    "$build/bin/vitopt-rt" bench -m "$file" -b 1,32 --runs 200 --threads "$threads" --json \
      > "$out/rt-$kind-$r.json"
    ORT_INPUT_SHAPE="$shape" node bench/peers/ort_infer.cjs "$out/$kind.onnx" 1,32 "$threads" 200 \
      > "$out/ort-$kind-$r.jsonl"
  done
done
echo "Command: bench/run_onnx_bench.sh $model $build $rounds $threads"
echo "Date: $(date -u '+%F %H:%M UTC')  CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rt(kind, r):
    return {x["batch"]: x["p50_ms"] for x in json.load(open(f"{out}/rt-{kind}-{r}.json"))}
def ort(kind, r):
    rows = [json.loads(l) for l in open(f"{out}/ort-{kind}-{r}.jsonl") if l.strip()]
    return {x["batch"]: x["p50_ms"] for x in rows}
print("| batch | vitopt fp32 | ORT fp32 (vitopt's ONNX) | vitopt W8A8 | ORT W8A8 (QDQ) | vitopt/ORT fp32 | vitopt/ORT W8A8 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for b in (1, 32):
    cols = {}
    for name, f, kind in (("rt32", rt, "fp32"), ("ort32", ort, "fp32"), ("rt8", rt, "w8a8"), ("ort8", ort, "w8a8")):
        cols[name] = [f(kind, r)[b] for r in range(1, rounds + 1)]
    cell = lambda v: f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})"
    ratio = lambda a, c: statistics.median([x / y for x, y in zip(cols[a], cols[c])])
    print(f"| {b} | {cell(cols['rt32'])} | {cell(cols['ort32'])} | {cell(cols['rt8'])} | "
          f"{cell(cols['ort8'])} | {ratio('rt32', 'ort32'):.2f} | {ratio('rt8', 'ort8'):.2f} |")
PY
