#!/usr/bin/python3
"""PyTorch eager peer for the vit-fmnist accuracy bar: the same recipe as `vitopt train` (AdamW
without decay on norms/biases/tokens/pos-embed, per-step linear warm-up + cosine, label smoothing,
grad-norm clip, optional zero-pad random crop and horizontal flip, batch 128) on Fashion-MNIST, reporting test
top-1 per epoch as JSON lines. Compare with the metrics.jsonl of a vitopt run with the same flags.
Usage: /usr/bin/python3 bench/peers/torch_train_fmnist.py --epochs 10 --threads 2 [--limit N]"""
import argparse, gzip, json, math, os, sys, time
# The same thread fix vitopt applies to itself (DESIGN.md §7): without it the idle OpenMP workers
# spin and steal the cores from OpenBLAS, which makes PyTorch several times slower here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torch_train_step import ViT  # noqa: E402  (same timm-layout model as the speed peer)

ROOT = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def load(prefix):
    with gzip.open(f"{ROOT}/{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{ROOT}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - MEAN) / STD
    return x, torch.from_numpy(y.astype(np.int64))


def augment(x, pad, hflip, gen):
    if pad == 0 and not hflip:
        return x
    b = x.shape[0]
    padded = F.pad(x, (pad, pad, pad, pad), value=(0 - MEAN) / STD)  # zero pixels, normalized
    out = torch.empty_like(x)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = (torch.rand(b, generator=gen) < 0.5) & hflip
    for i in range(b):
        img = padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
        out[i] = img.flip(-1) if flip[i] else img
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup-epochs", type=float, default=0.5)
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--crop-padding", type=int, default=0)
    ap.add_argument("--hflip", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    m = ViT()
    for name, p in m.named_parameters():  # timm-like init, as vitopt's init_weights
        if p.dim() > 1 and "pos_embed" not in name and "token" not in name:
            torch.nn.init.trunc_normal_(p, std=0.02)
        elif name.endswith("bias"):
            torch.nn.init.zeros_(p)
    decay = [p for n, p in m.named_parameters() if p.dim() > 1 and "token" not in n and "pos_embed" not in n]
    no_decay = [p for n, p in m.named_parameters() if not (p.dim() > 1 and "token" not in n and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    bs = 128
    steps = len(xtr) // bs
    total, warm = steps * a.epochs, round(a.warmup_epochs * steps)
    step = 0
    for epoch in range(a.epochs):
        m.train()
        perm = torch.randperm(len(xtr), generator=gen)
        t0 = time.perf_counter()
        for s in range(steps):
            lr = (a.lr * (step + 1) / warm if step < warm else
                  a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(total - warm, 1)))))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[s * bs:(s + 1) * bs]
            loss = F.cross_entropy(m(augment(xtr[idx], a.crop_padding, a.hflip, gen)), ytr[idx],
                               label_smoothing=a.label_smoothing)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            step += 1
        m.eval()
        with torch.no_grad():
            correct = sum((m(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item()
                          for i in range(0, len(xte), 500))
        print(json.dumps({"epoch": epoch + 1, "val_top1": correct / len(xte),
                          "train_seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
