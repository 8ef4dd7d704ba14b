"""Continue training one of the library's checkpoints in PyTorch, on many processes (DDP).

    torchrun --nproc_per_node=N interop/pytorch/train_ddp.py --checkpoint IN --out OUT --steps S \\
        --data MNIST_DIR [--batch B] [--lr X] [--ema D] [--seed K]

Each process draws its own batch of `--batch` images (the global batch is N x B), t uniform in
1..T, Gaussian noise, and regresses the configured prediction (epsilon, x0 or v) with the mean
squared error (optionally min-SNR-gamma weighted); DDP averages the gradients, Adam steps, and the
EMA follows the library's rule, decay min(D, (1 + step) / (10 + step)) with the global step. The
schedule's betas are the library's (src/diffusion/schedule.ts). gloo on CPU, nccl with CUDA.
Rank 0 writes OUT (raw weights, EMA, Adam's moments; steps_trained grown by S), which the
library's loadModel reads. Defaults of --batch, --lr, --ema, --adam-beta2, --cond-dropout and
--min-snr come from the checkpoint's training settings (train_mnist.ts writes them) when present.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from models import build_network  # noqa: E402


def make_betas(c):
    """The betas of a schedule configuration, float64, index t - 1 for t = 1..T (schedule.ts)."""
    T = c["T"]
    if c["kind"] == "linear":
        b1, bT = c["betaStart"], c["betaEnd"]
        return torch.tensor([b1 + (t - 1) / (T - 1) * (bT - b1) for t in range(1, T + 1)], dtype=torch.float64)
    if c["kind"] == "cosine":
        s = c.get("s", 0.008)
        f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    elif c["kind"] == "sigmoid":
        start, end, tau = c.get("start", -3), c.get("end", 3), c.get("tau", 1)
        sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
        v0, v1 = sig(start / tau), sig(end / tau)
        f = lambda u: (v1 - sig((u * (end - start) + start) / tau)) / (v1 - v0)  # noqa: E731
    else:
        raise NotImplementedError(f"schedule kind {c['kind']!r} is not implemented in train_ddp.py")
    return torch.tensor([min(1 - f(t / T) / f((t - 1) / T), c.get("maxBeta", 0.999)) for t in range(1, T + 1)],
                        dtype=torch.float64)


def read_idx(folder, name):
    """An IDX file of `folder` (raw, or `name.gz`) as a uint8 tensor of its shape."""
    path = os.path.join(folder, name)
    opener = open if os.path.exists(path) else gzip.open
    with opener(path if os.path.exists(path) else path + ".gz", "rb") as f:
        raw = f.read()
    zero, kind, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).reshape(shape)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--data", required=True, help="folder with train-images-idx3-ubyte and train-labels-idx1-ubyte")
    for flag in ("batch", "lr", "ema", "adam-beta2", "cond-dropout", "min-snr"):
        p.add_argument(f"--{flag}", type=int if flag == "batch" else float)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    dev = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(dev)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    ck = load_checkpoint(a.checkpoint)
    cfg = ck.config
    if cfg.get("objective", "ddpm") != "ddpm":
        raise NotImplementedError(f"objective {cfg['objective']!r} is not implemented in train_ddp.py")
    saved = json.loads(ck.metadata.get("training", "{}"))
    o = {k: getattr(a, k.replace("-", "_")) for k in ("batch", "lr", "ema", "adam-beta2", "cond-dropout", "min-snr")}
    defaults = {"batch": 32, "lr": 1e-4, "ema": 0.999, "adam-beta2": 0.999, "cond-dropout": 0.1, "min-snr": 0}
    o = {k: v if v is not None else saved.get(k, defaults[k]) for k, v in o.items()}

    # Data: pixels p / 127.5 - 1 (as loadMnist), shaped as the model's samples.
    images = read_idx(a.data, "train-images-idx3-ubyte").float() / 127.5 - 1
    if images[0].numel() != math.prod(cfg["sampleShape"]):
        raise ValueError(f"{a.data}: images of {list(images.shape[1:])} do not fit samples of {cfg['sampleShape']}")
    images = images.reshape(images.shape[0], *cfg["sampleShape"]).to(dev)
    labels = read_idx(a.data, "train-labels-idx1-ubyte").long().to(dev)
    classes = cfg["network"].get("classes") or 0
    if classes and labels.max() >= classes:
        raise ValueError(f"{a.data}: labels reach {labels.max().item()}, the model knows {classes} classes")

    if cfg["network"].get("learnSigma"):
        raise NotImplementedError(
            "train_ddp.py trains the simple loss only; a learnSigma checkpoint needs the hybrid "
            "L_simple + 0.001 L_vlb of src/diffusion/learned_variance.ts (train it with train_mnist.ts)")
    net = build_network(cfg).to(dev)
    net.load_state_dict(ck.raw)
    ema_sd = {k: v.to(dev).clone() for k, v in (ck.ema or ck.raw).items()}
    model = DDP(net, device_ids=[local] if cuda else None)
    opt = torch.optim.Adam(net.parameters(), lr=o["lr"], betas=(0.9, o["adam-beta2"]), eps=1e-8)
    params = dict(net.named_parameters())
    if ck.m is not None:  # go on with the library's Adam state: the same moments as PyTorch's
        for n, prm in params.items():
            opt.state[prm] = {"step": torch.tensor(float(ck.optimizer_step)),
                              "exp_avg": ck.m[n].to(dev).clone(), "exp_avg_sq": ck.v[n].to(dev).clone()}

    ab = torch.cumprod(1 - make_betas(cfg["schedule"]), 0)
    a_t, s_t = ab.sqrt().float().to(dev), (1 - ab).sqrt().float().to(dev)
    snr = (ab / (1 - ab)).float().to(dev)
    gen = torch.Generator(device=dev).manual_seed(a.seed * 100_003 + rank * 7919 + ck.steps_trained)
    B, T, pred = o["batch"], cfg["schedule"]["T"], cfg["prediction"]
    model.train()
    for k in range(1, a.steps + 1):
        step = ck.steps_trained + k
        idx = torch.randint(0, images.shape[0], (B,), device=dev, generator=gen)
        t = torch.randint(1, T + 1, (B,), device=dev, generator=gen)
        x0 = images[idx]
        eps = torch.randn(x0.shape, device=dev, generator=gen)
        view = (B,) + (1,) * (x0.dim() - 1)
        a_b, s_b = a_t[t - 1].view(view), s_t[t - 1].view(view)
        xt = a_b * x0 + s_b * eps
        y = None
        if classes:
            drop = torch.rand(B, device=dev, generator=gen) < o["cond-dropout"]
            y = torch.where(drop, torch.full_like(labels[idx], classes), labels[idx])
        target = {"epsilon": eps, "x0": x0, "v": a_b * eps - s_b * x0}[pred]
        err = (model(xt, t.float(), y) - target) ** 2
        if o["min-snr"] > 0:  # min(SNR, gamma) in x0 units, as prediction-specific weights
            r, gamma = snr[t - 1], o["min-snr"]
            w = {"epsilon": r.clamp(max=gamma) / r, "x0": r.clamp(max=gamma), "v": r.clamp(max=gamma) / (r + 1)}[pred]
            err = err * w.view(view)
        loss = err.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay = min(o["ema"], (1 + step) / (10 + step))
        with torch.no_grad():
            for n, prm in params.items():
                ema_sd[n].mul_(decay).add_(prm.detach(), alpha=1 - decay)
        if rank == 0 and (k % 10 == 0 or k == a.steps):
            print(f"step {step} (+{k}/{a.steps}) loss {loss.item():.4f} world {world} batch {B}x{world}", flush=True)

    if rank == 0:
        state = opt.state
        save_checkpoint(
            a.out, cfg, raw=net.state_dict(), ema=ema_sd, steps_trained=ck.steps_trained + a.steps,
            m={n: state[prm]["exp_avg"] for n, prm in params.items()},
            v={n: state[prm]["exp_avg_sq"] for n, prm in params.items()},
            optimizer_step=int(state[next(iter(params.values()))]["step"]),
            extra={**ck.metadata, "pytorch": json.dumps({"world": world, "steps": a.steps, "seed": a.seed, **o})},
        )
        print(f"wrote {a.out} at step {ck.steps_trained + a.steps}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
