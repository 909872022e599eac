#!/usr/bin/python3
"""PyTorch's own post-training quantization as the peer for `vitopt quantize`: the same trained
weights (read from a vitopt fp32 .safetensors file: 8-byte header length + JSON + raw data) in an
eager timm-layout ViT, then torch.ao.quantization.quantize_dynamic (int8 weights per tensor,
dynamic int8 activations per tensor, on every nn.Linear; the patch-embedding conv stays fp32), and
top-1 of both on the full Fashion-MNIST test set. Size = bytes of torch.save(state_dict()).
  /usr/bin/python3 bench/peers/torch_quantize_dynamic.py --model best.safetensors [--limit N]
Prints one JSON object."""
import argparse, gzip, io, json, os, struct
import numpy as np
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {t['dtype']}: give the fp32 model")
        b, e = t["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np.float32).reshape(t["shape"]).copy())
    return meta, tensors


class Block(nn.Module):
    def __init__(self, dim, heads, hd, mlp, eps, qkv_bias):
        super().__init__()
        self.heads, self.hd = heads, hd
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * heads * hd, bias=qkv_bias)
        self.attn.proj = nn.Linear(heads * hd, dim)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)

    def forward(self, x):  # (B, N, C), timm's pre-norm block
        B, N, _ = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        a = ((qkv[0] * self.hd ** -0.5) @ qkv[1].transpose(-2, -1)).softmax(-1)
        x = x + self.attn.proj((a @ qkv[2]).transpose(1, 2).reshape(B, N, -1))
        return x + self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, P = c["embed_dim"], c["patch_size"]
        hd = c.get("head_dim") or C // c["num_heads"]
        blocks = c.get("blocks") or [{}] * c["depth"]
        for b in blocks:
            if b.get("skip_attn") or b.get("skip_mlp") or any(b.get(k, -1) >= 0 for k in ("attn_shared_with", "mlp_shared_with")) or \
               any(b.get(k, 0) for k in ("qkv_rank", "proj_rank", "fc1_rank", "fc2_rank")) or c.get("distill_token"):
                raise SystemExit("this peer models plain ViTs only (no skips, sharing, low rank, dist token)")
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(c["in_channels"], C, P, P)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, (c["image_size"] // P) ** 2 + 1, C))
        self.blocks = nn.ModuleList([Block(C, b.get("num_heads") or c["num_heads"], hd, b.get("mlp_dim") or c["mlp_dim"],
                                           c.get("ln_eps", 1e-6), c.get("qkv_bias", True)) for b in blocks])
        self.norm = nn.LayerNorm(C, eps=c.get("ln_eps", 1e-6))
        self.head = nn.Linear(C, c["num_classes"])
        self.avg = c.get("pool") == "avg"

    def forward(self, x):
        h = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), h], 1) + self.pos_embed
        for blk in self.blocks:
            h = blk(h)
        h = self.norm(h)
        return self.head(h[:, 1:].mean(1) if self.avg else h[:, 0])


def test_set(c, limit):
    with gzip.open(f"{DATA}/t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DATA}/t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    if limit:
        x, y = x[:limit], y[:limit]
    pre = c.get("preprocess", {})
    mean, std = pre.get("mean", [0.5])[0], pre.get("std", [0.5])[0]
    return (torch.from_numpy(x.astype(np.float32) / 255.0) - mean) / std, torch.from_numpy(y.astype(np.int64))


def top1(model, x, y):
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return (pred == y).double().mean().item()


def saved_bytes(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta, tensors = read_safetensors(args.model)
    c = json.loads(meta["vitopt.config"])
    model = ViT(c).eval()
    model.load_state_dict(tensors, strict=True)
    engines = torch.backends.quantized.supported_engines  # Debian's build: no fbgemm
    torch.backends.quantized.engine = "onednn" if "onednn" in engines else "qnnpack"
    q = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    x, y = test_set(c, args.limit)
    fp, qb = saved_bytes(model), saved_bytes(q)
    r = {"peer": "torch.ao.quantization.quantize_dynamic", "torch": torch.__version__,
         "engine": torch.backends.quantized.engine, "images": len(y),
         "top1_fp32": top1(model, x, y), "top1_int8": top1(q, x, y),
         "fp32_bytes": fp, "int8_bytes": qb, "size_ratio": qb / fp,
         "model_file_bytes": os.path.getsize(args.model)}
    r["top1_delta_points"] = 100 * (r["top1_int8"] - r["top1_fp32"])
    print(json.dumps(r))


if __name__ == "__main__":
    main()
