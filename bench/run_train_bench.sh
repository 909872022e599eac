#!/usr/bin/env bash
# Training throughput, side by side in one run, same threads, batch 128, vit-fmnist:
#   vitopt (its default start-up: passive OpenMP + OpenBLAS kernel fix) and vitopt with each fix
#   undone, vs PyTorch eager as users run it and PyTorch eager given the same environment fixes.
# Usage: bench/run_train_bench.sh [build-dir]   (nothing else may run meanwhile)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
threads=$(nproc)  # bench_train uses all cores (Args 128, 0); the peer gets the same count
secs=10
bench="$build/bin/bench_train"
rate_vitopt() {  # env assignments as arguments
  env "$@" "$bench" --benchmark_filter="BM_TrainStep/vit_fmnist/128/0" \
    --benchmark_min_time=$secs --benchmark_format=json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["benchmarks"][0]["images_per_s"])'
}
rate_torch() {
  env "$@" /usr/bin/python3 bench/peers/torch_train_step.py --threads "$threads" --seconds $secs |
    sed -E 's/.*images_per_s=([0-9.]+).*/\1/'
}
blas_core=$(/usr/bin/python3 - <<'PY'
import ctypes
lib = ctypes.CDLL("libopenblas.so.0"); lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())
PY
)
echo "date: $(date -u +%F)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  threads: $threads  OpenBLAS default core: $blas_core"
v_default=$(rate_vitopt)
v_spin=$(rate_vitopt OMP_WAIT_POLICY=ACTIVE)
v_raw=$(rate_vitopt VITOPT_NO_REEXEC=1)
t_plain=$(rate_torch)
if grep -qw avx512bw /proc/cpuinfo; then fix=SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then fix=Haswell; else fix=$blas_core; fi
t_tuned=$(rate_torch OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=$fix)
printf '| setting | images/s |\n|---|---|\n'
printf '| vitopt default (passive OpenMP + OpenBLAS kernel fix) | %s |\n' "$v_default"
printf '| vitopt, OpenMP spinning (OMP_WAIT_POLICY=ACTIVE) | %s |\n' "$v_spin"
printf '| vitopt, no start-up fixes (VITOPT_NO_REEXEC=1) | %s |\n' "$v_raw"
printf '| PyTorch 1.13 eager, default environment | %s |\n' "$t_plain"
printf '| PyTorch 1.13 eager, given the same fixes by hand | %s |\n' "$t_tuned"
/usr/bin/python3 -c "print('ratio vitopt / PyTorch default: %.2fx; vs PyTorch hand-tuned: %.2fx' % ($v_default/$t_plain, $v_default/$t_tuned))"
