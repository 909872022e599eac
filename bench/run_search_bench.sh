#!/usr/bin/env bash
# Architecture search on a trained model (issue 23), the three measurements of BENCHMARKS.md:
#   1. latency-ms=30% (0.3x the baseline's runtime latency, batch 1, 1 thread): the searched
#      model and each technique alone (its best setting under the budget, or its fastest when none
#      meets it), all fine-tuned the same way (FT_EPOCHS of logit distillation from the original),
#      evaluated together on the full test split (report/ of OUT/latency30);
#   2. params=25% and params=10%: one search, one model per budget, fine-tuned likewise;
#   3. the search time without fine-tuning (search_seconds in each search.json).
# Usage: [POP=32] [GENS=20] [FT_EPOCHS=1] [SUPERNET=0] bench/run_search_bench.sh BUILD MODEL OUT
# Nothing else should run meanwhile (2-core machine; latencies are measured during the search).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: run_search_bench.sh BUILD MODEL OUT}
model=${2:?usage: run_search_bench.sh BUILD MODEL OUT}
out=${3:?usage: run_search_bench.sh BUILD MODEL OUT}
pop=${POP:-32}
gens=${GENS:-20}
ft=${FT_EPOCHS:-1}
supernet=${SUPERNET:-0}
vitopt="$build/bin/vitopt"
echo "date: $(date -u +%F)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
common=(--model "$model" --population "$pop" --generations "$gens" --finetune-epochs "$ft"
        --supernet-epochs "$supernet" --objectives top1,latency-ms)
"$vitopt" search "${common[@]}" --budget latency-ms=30% --out "$out/latency30"
"$vitopt" search "${common[@]}" --budget params=25% --budget params=10% --no-deliver-singles \
  --out "$out/params"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for run in ("latency30", "params"):
    j = json.load(open(f"{out}/{run}/search.json"))
    b = j["baseline"]
    print(f"\n{run}: search {j['search_seconds']:.0f} s, {j['evaluated']} candidates; baseline "
          f"held-out {100*b['top1']:.2f}%, {b['latency-ms']:.3f} ms, {b['params']/1e6:.3f}M params")
    rows = [("search", r) for r in j["returned"]] + list(j.get("singles", {}).items())
    models = j.get("evaluation", {}).get("models", [])
    test = {m["path"]: m for m in models}
    base = [m for m in models if m.get("is_baseline")]
    if base:
        bl = base[0]["efficiency"]["latency"]
        print(f"  baseline test top-1 {100*base[0]['classification']['top1']:.2f}%, report p50 "
              f"{bl['p50_ms']:.3f} ms (spread {bl['p50_spread_ms']:.3f})")
    for name, r in rows:
        if "model" not in r:
            print(f"  {name}: {r.get('error')}")
            continue
        m = r["final_metrics"]
        t = test.get(r["model"], {}).get("classification", {}).get("top1")
        lat = test.get(r["model"], {}).get("efficiency", {}).get("latency")
        rep = (f"; report p50 {lat['p50_ms']:.3f} ms ({lat['p50_ms']/bl['p50_ms']:.2f}x)"
               if lat and base else "")
        print(f"  {name} [{r['budget'] or 'over ' + r.get('over_budget', '')}]: {r['key']}\n"
              f"    search held-out {100*r['search_metrics']['top1']:.2f}% -> test "
              f"{'%.2f%%' % (100*t) if t is not None else 'n/a'}; {m['latency-ms']:.3f} ms "
              f"({m['latency-ms']/b['latency-ms']:.2f}x), {m['params']/1e6:.3f}M params, "
              f"{m['size-mb']:.3f} MB, {m['memory-mb']:.2f} MB runtime memory{rep}")
PY
