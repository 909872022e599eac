#!/usr/bin/python3
"""PyTorch eager inference peer for the vitopt runtime: the same ViT (timm layout, per-block heads /
MLP widths / skips / distillation token read from a vitopt model file's config, or a preset shape)
in fp32 and with dynamic int8 quantization (torch.ao.quantization.quantize_dynamic on the Linears),
batch latency percentiles at a fixed thread count. Optionally exports the fp32 model to ONNX for
the ONNX Runtime peer (ort_infer.mjs).
Run with Debian's interpreter and the environment the project documents (BENCHMARKS.md):
  OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/peers/torch_infer.py \
      --model deit-small.safetensors --batch 1 --threads 2 [--int8] [--export-onnx out.onnx]
Prints one JSON object per (mode, batch): {"engine", "batch", "p50_ms", "p90_ms", "p99_ms",
"images_per_s"}."""
import argparse, json, struct, time
import numpy as np
import torch
import torch.nn as nn

PRESETS = {
    "vit-fmnist": dict(image_size=28, in_channels=1, patch_size=4, embed_dim=128, depth=6, num_heads=4, mlp_dim=256, num_classes=10),
    "deit-tiny": dict(image_size=224, in_channels=3, patch_size=16, embed_dim=192, depth=12, num_heads=3, mlp_dim=768, num_classes=1000),
    "deit-small": dict(image_size=224, in_channels=3, patch_size=16, embed_dim=384, depth=12, num_heads=6, mlp_dim=1536, num_classes=1000),
    "vit-base-16": dict(image_size=224, in_channels=3, patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_dim=3072, num_classes=1000),
}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            continue  # quantized integer tensors: this peer only runs fp32 weights
        b, e = t["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np.float32).reshape(t["shape"]).copy())
    return meta, tensors


class Attention(nn.Module):
    def __init__(self, dim, heads, hd, qkv_bias):
        super().__init__()
        self.heads, self.hd = heads, hd
        self.qkv = nn.Linear(dim, 3 * heads * hd, bias=qkv_bias)
        self.proj = nn.Linear(heads * hd, dim)

    def forward(self, x):
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q * self.hd ** -0.5) @ k.transpose(-2, -1)
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, self.heads * self.hd))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, c, b):
        super().__init__()
        dim, eps = c["embed_dim"], c.get("ln_eps", 1e-6)
        self.skip_attn, self.skip_mlp = b.get("skip_attn", False), b.get("skip_mlp", False)
        if not self.skip_attn:
            self.norm1 = nn.LayerNorm(dim, eps=eps)
            self.attn = Attention(dim, b.get("num_heads") or c["num_heads"], c["head_dim"], c.get("qkv_bias", True))
        if not self.skip_mlp:
            self.norm2 = nn.LayerNorm(dim, eps=eps)
            self.mlp = Mlp(dim, b.get("mlp_dim") or c["mlp_dim"])

    def forward(self, x):
        if not self.skip_attn:
            x = x + self.attn(self.norm1(x))
        if not self.skip_mlp:
            x = x + self.mlp(self.norm2(x))
        return x


class ViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        C, P = c["embed_dim"], c["patch_size"]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(c["in_channels"], C, P, P)
        n = (c["image_size"] // P) ** 2 + (2 if c.get("distill_token") else 1)
        self.cls_token = nn.Parameter(torch.randn(1, 1, C) * 0.02)
        if c.get("distill_token"):
            self.dist_token = nn.Parameter(torch.randn(1, 1, C) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n, C) * 0.02)
        blocks = c.get("blocks") or [{} for _ in range(c["depth"])]
        if any(any(b.get(k, -1) >= 0 for k in ("attn_shared_with", "mlp_shared_with")) or any(b.get(r, 0) for r in ("qkv_rank", "proj_rank", "fc1_rank", "fc2_rank")) for b in blocks):
            raise SystemExit("torch_infer.py: low-rank/shared blocks are not modelled by this peer")
        self.blocks = nn.ModuleList([Block(c, b) for b in blocks])
        self.norm = nn.LayerNorm(C, eps=c.get("ln_eps", 1e-6))
        self.head = nn.Linear(C, c["num_classes"])
        if c.get("distill_token"):
            self.head_dist = nn.Linear(C, c["num_classes"])

    def forward(self, x):
        B = x.shape[0]
        h = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        parts = [self.cls_token.expand(B, -1, -1)]
        if self.c.get("distill_token"):
            parts.append(self.dist_token.expand(B, -1, -1))
        h = torch.cat(parts + [h], 1) + self.pos_embed
        for blk in self.blocks:
            h = blk(h)
        h = self.norm(h)
        if self.c.get("pool") == "avg":
            return self.head(h[:, (2 if self.c.get("distill_token") else 1):].mean(1))
        out = self.head(h[:, 0])
        if self.c.get("distill_token"):
            out = (out + self.head_dist(h[:, 1])) / 2
        return out


def build(spec):
    if spec in PRESETS:
        c = dict(PRESETS[spec])
        c["head_dim"] = c["embed_dim"] // c["num_heads"]
        return ViT(c).eval()
    meta, tensors = read_safetensors(spec)
    c = json.loads(meta["vitopt.config"])
    if not c.get("head_dim"):
        c["head_dim"] = c["embed_dim"] // c["num_heads"]
    model = ViT(c).eval()
    if "vitopt.quant" not in meta:  # same weights as the file (random shapes otherwise)
        model.load_state_dict(tensors, strict=True)
    return model


def timed(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1e3)
    return np.percentile(ms, [50, 90, 99])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="vitopt model file or preset name")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--int8", action="store_true", help="also time quantize_dynamic(int8)")
    ap.add_argument("--export-onnx", default="", help="write the fp32 model as ONNX (batch axis dynamic)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = build(a.model)
    c = model.c
    if a.export_onnx:
        x = torch.randn(1, c["in_channels"], c["image_size"], c["image_size"])
        torch.onnx.export(model, x, a.export_onnx, input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=14)
    modes = [("torch-fp32", model)]
    if a.int8:
        modes.append(("torch-int8-dynamic", torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)))
    with torch.inference_mode():
        for name, m in modes:
            for b in [int(s) for s in a.batch.split(",")]:
                x = torch.randn(b, c["in_channels"], c["image_size"], c["image_size"])
                p50, p90, p99 = timed(lambda: m(x), a.runs, a.warmup)
                print(json.dumps({"engine": name, "model": a.model, "batch": b, "threads": a.threads,
                                  "p50_ms": p50, "p90_ms": p90, "p99_ms": p99,
                                  "images_per_s": 1000.0 * b / p50}), flush=True)


if __name__ == "__main__":
    main()
