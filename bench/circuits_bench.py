#!/usr/bin/python3
"""Driver of bench/run_circuits_bench.sh (see there). Writes OUT/results.json and prints the
BENCHMARKS.md table rows."""
import json, os, subprocess, sys, time

build, model, out, ft_limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
vitopt, rt = f"{build}/bin/vitopt", f"{build}/bin/vitopt-rt"
os.makedirs(out, exist_ok=True)
ANALYSIS = ["--analysis-batches", "4", "--analysis-batch-size", "64"]


def run_json(args):
    text = subprocess.run([vitopt] + args + ["--json"], check=True, capture_output=True,
                          text=True).stdout
    return json.loads(text[text.index("{"):])


base = run_json(["info", "--model", model])
base_macs, base_params = base["macs"], base["params"]
results = {"model": model, "base_macs": base_macs, "base_params": base_params, "timing": {}}

# 1. Time of one ACDC run per level and of the EAP-IG scores (threshold 0.01, 256 images).
for level in ("node", "edge"):
    start = time.time()
    j = run_json(["circuits", "--model", model, "--method", "acdc", "--threshold", "0.01",
                  "--level", level, "--no-measure", "--out", f"{out}/time-{level}"] + ANALYSIS)
    s = j["settings"][0]
    results["timing"][f"acdc_{level}"] = {"search_s": s["seconds"], "forwards": s["forwards"],
                                          "command_s": time.time() - start,
                                          "kept_heads": s["kept_heads"]}
for level in ("node", "edge"):
    j = run_json(["circuits", "--model", model, "--method", "eap-ig", "--keep-ratio", "0.8",
                  "--level", level, "--no-measure", "--out", f"{out}/time-eap-ig-{level}"] + ANALYSIS)
    results["timing"][f"eap_ig_{level}"] = {"scoring_s": j["settings"][0]["scoring_seconds"]}

# 2. Sweeps: the MACs each setting leads to (no fine-tuning, no accuracy).
sweeps = {}
ratios = [round(0.30 + 0.05 * i, 2) for i in range(14)]
for method, extra in (("eap-ig", []), ("eap", ["--use-task-loss"])):
    j = run_json(["circuits", "--model", model, "--method", method, "--keep-ratio",
                  ",".join(map(str, ratios)), "--no-measure", "--out", f"{out}/sweep-{method}"]
                 + extra + ANALYSIS)
    sweeps[method] = [(s["slimmed"]["macs"], ["--keep-ratio", str(s["keep_ratio"])] + extra)
                      for s in j["settings"]]
thresholds = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
j = run_json(["circuits", "--model", model, "--method", "acdc", "--threshold",
              ",".join(map(str, thresholds)), "--no-measure", "--out", f"{out}/sweep-acdc"]
             + ANALYSIS)
sweeps["acdc"] = [(s["slimmed"]["macs"], ["--threshold", str(s["threshold"])]) for s in j["settings"]]
for crit in ("taylor", "l2"):
    sweeps[crit] = []
    for a in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]:
        j = run_json(["prune", "--model", model, "--method", "heads,neurons", "--criterion", crit,
                      "--ratio", str(a), "--calib-images", "256", "--no-measure",
                      "--out", f"{out}/sweep-{crit}-{a}.safetensors"])
        sweeps[crit].append((j["pruned"]["macs"], ["--ratio", str(a)]))
results["sweeps"] = {m: [[macs / base_macs, args] for macs, args in v] for m, v in sweeps.items()}

# 3. The setting closest to each MACs target, fine-tuned and measured.
ft = ["--finetune-epochs", "1", "--limit", str(ft_limit)] if ft_limit else ["--finetune-epochs", "1"]
rows = []
for target in (0.7, 0.5):
    for method, options in sweeps.items():
        macs, args = min(options, key=lambda o: abs(o[0] / base_macs - target))
        name = f"{method}-{int(target * 100)}"
        if method in ("taylor", "l2"):
            path = f"{out}/{name}.safetensors"
            j = run_json(["prune", "--model", model, "--method", "heads,neurons", "--criterion",
                          method, "--calib-images", "256", "--out", path] + args + ft)
            row = {"top1_before": j["pruned_no_finetune"]["top1"], "kl": j["pruned_no_finetune"]["kl"],
                   "top1_after": j["pruned"]["accuracy"]["top1"], "params": j["pruned"]["params"],
                   "macs": j["pruned"]["macs"]}
        else:
            j = run_json(["circuits", "--model", model, "--method", method, "--out", f"{out}/{name}"]
                         + args + ft + ANALYSIS)
            s = j["settings"][0]
            path = s["model_file"]
            row = {"top1_before": s["before_finetune"]["top1"], "kl": s["kl_to_full"],
                   "top1_after": s["after_finetune"]["top1"], "params": s["slimmed"]["params"],
                   "macs": s["slimmed"]["macs"]}
            results.setdefault("base_top1", j["full"]["accuracy"]["top1"])
        row.update({"method": method, "target": target, "setting": " ".join(args), "path": path})
        rows.append(row)
        print(json.dumps(row), flush=True)
results["rows"] = rows

# 4. Runtime latency at batch 1 of the baseline and every fine-tuned model, one after another.
paths = [model] + [r["path"] for r in rows]
text = subprocess.run([rt, "bench", "-m"] + paths + ["-b", "1", "--runs", "300", "--json"],
                      check=True, capture_output=True, text=True).stdout
results["latency"] = json.loads(text[text.index("["):])  # one object per model
with open(f"{out}/results.json", "w") as f:
    json.dump(results, f, indent=2)
print(f"results in {out}/results.json")
