"""PyTorch modules of the library's MLP and UNet denoisers, built from the library's configuration.

Each module's state_dict has exactly the names, shapes and order of the library's checkpoints
(src/models/mlp.ts, src/models/unet.ts), and its forward pass computes what ours computes, op for
op: GroupNorm (eps 1e-5, biased variance), SiLU, softmax attention scaled by 1/sqrt(head size),
nearest x2 upsampling, the sinusoidal embedding [sin(t f), cos(t f)] with f_i =
exp(-ln(10000) i / (half - 1)) of the raw timestep t in 1..T, and the MLP's scalar time
(t - 1) / (T - 1) - 0.5.

    net = build_network(config)        # the library's config: {"network": {...}, ...} or the network's
    eps = net(x, t, labels)            # x [B, ...sampleShape], t [B] floats in 1..T, labels [B] or None

labels are class indices 0..classes-1, `classes` being the null class ("no class"); a conditional
network given no labels predicts unconditionally (the null class), as ours does.

Supported: the MLP (timeInput "scalar" or "sinusoidal", classes) and the UNet with resnet blocks,
full attention at any of its resolutions (the default: the lowest, the middle block), classes,
blocksPerLevel, dropout and patch; with learnSigma either outputs twice the channels (eps, then the
variance output v, along dim 1: torch.split(out, C, dim=1)). Anything else (fc-unet, ConvNeXt
blocks, linear attention, an option this file does not know) raises NotImplementedError naming it.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

MLP_KEYS = {"kind", "dim", "hidden", "layers", "T", "timeInput", "embeddingDim", "classes", "learnSigma"}
MODEL_KEYS = {"network", "schedule", "prediction", "sampleShape", "objective"}
UNET_KEYS = {
    "kind", "channels", "imageSize", "base", "mults", "groups", "heads", "attentionAt",
    "dropout", "blocksPerLevel", "block", "convnextMult", "attention", "patch", "classes",
    "learnSigma",
}


def timestep_embedding(t, dim):
    """[B] timesteps -> [B, dim]: [sin(t f), cos(t f)], f_i = exp(-ln(10000) i / (half - 1))."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64, device=t.device)
    freqs = torch.exp(-math.log(10000) * i / (half - 1)).to(torch.float32)
    a = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([a.sin(), a.cos()], 1)


def _refuse(what):
    raise NotImplementedError(f"{what} is not implemented in interop/pytorch/models.py")


def _check_keys(net, known):
    for k in net:
        if k not in known:
            _refuse(f"network option {k!r} (of a {net.get('kind')} network)")


def _label_embedding(classes, dim):
    """nn.Embedding over classes + 1 rows, the last one the null class."""
    return nn.Embedding(classes + 1, dim)


def _labels(labels, classes, batch, device):
    if labels is None:
        return torch.full((batch,), classes, dtype=torch.long, device=device)
    labels = labels.to(device=device).long()
    if labels.shape != (batch,) or labels.min() < 0 or labels.max() > classes:
        raise ValueError(f"labels must be [{batch}] integers in [0, {classes}] ({classes}: no class)")
    return labels


class MLP(nn.Module):
    """x concatenated with the time input (and the class embedding), `layers` Linear + ReLU, then
    a Linear back to `dim`: src/models/mlp.ts."""

    def __init__(s, c):
        super().__init__()
        _check_keys(c, MLP_KEYS)
        if c["timeInput"] not in ("scalar", "sinusoidal"):
            _refuse(f"mlp timeInput {c['timeInput']!r}")
        s.dim, s.T, s.time_input, s.emb = c["dim"], c["T"], c["timeInput"], c["embeddingDim"]
        s.classes = c.get("classes") or 0
        n_in = s.dim + (1 if s.time_input == "scalar" else s.emb) + (s.emb if s.classes else 0)
        out = s.dim * (2 if c.get("learnSigma") else 1)  # learnSigma: eps, then v
        sizes = [n_in] + [c["hidden"]] * c["layers"] + [out]
        layers = []
        for i in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
        s.net = nn.Sequential(*layers[:-1])  # net.0, net.2, ..., net.<2 layers>
        if s.classes:
            s.label_emb = _label_embedding(s.classes, s.emb)

    def forward(s, x, t, labels=None):
        if labels is not None and not s.classes:
            raise ValueError("the network is unconditional (no classes): it takes no labels")
        x = x.reshape(x.shape[0], s.dim)
        t = t.to(x.dtype)
        if s.time_input == "scalar":
            time = ((t - 1) / (s.T - 1) - 0.5)[:, None]
        else:
            time = timestep_embedding(t, s.emb).to(x.dtype)
        parts = [x, time]
        if s.classes:
            parts.append(s.label_emb(_labels(labels, s.classes, x.shape[0], x.device)))
        return s.net(torch.cat(parts, 1))


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv, + Linear(time embedding), GroupNorm -> SiLU -> [dropout] ->
    3x3 conv, + the input (through a 1x1 conv when the channels change): src/nn/resnet_block.ts."""

    def __init__(s, cin, cout, tdim, groups, dropout):
        super().__init__()
        s.n1, s.c1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        s.t = nn.Linear(tdim, cout)
        s.n2, s.c2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            s.skip = nn.Conv2d(cin, cout, 1)
        s.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(s, x, te):
        h = s.c1(F.silu(s.n1(x))) + s.t(te)[:, :, None, None]
        h = s.c2(s.drop(F.silu(s.n2(h))))
        return h + (s.skip(x) if hasattr(s, "skip") else x)


class Attention(nn.Module):
    """x + o(softmax(q^T k / sqrt(d)) v) over the pixels, GroupNorm first, qkv laid out
    [3, heads, d]: src/nn/attention.ts."""

    def __init__(s, c, heads, groups):
        super().__init__()
        s.n, s.qkv, s.o, s.heads = nn.GroupNorm(groups, c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1), heads

    def forward(s, x):
        b, c, hh, ww = x.shape
        d = c // s.heads
        q, k, v = s.qkv(s.n(x)).reshape(b, 3, s.heads, d, hh * ww).unbind(1)
        a = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(d), -1)
        return x + s.o(torch.einsum("bhij,bhdj->bhdi", a, v).reshape(b, c, hh, ww))


class UNet(nn.Module):
    """src/models/unet.ts with resnet blocks and full attention. Modules are registered in the
    library's parameter order: tmlp, inc, down, downx, ds, dattn, mid1, attn, mid2, up, upx, us,
    uattn, outn, outc, label_emb."""

    def __init__(s, c):
        super().__init__()
        _check_keys(c, UNET_KEYS)
        if c.get("block", "resnet") != "resnet":
            _refuse(f"unet block {c['block']!r}")
        if c.get("attention", "full") != "full":
            _refuse(f"unet attention {c['attention']!r}")
        base, mults, g, heads = c["base"], list(c["mults"]), c["groups"], c["heads"]
        s.base, s.tdim, s.patch = base, 4 * base, c.get("patch", 1)
        s.channels, s.size, s.classes = c["channels"], c["imageSize"], c.get("classes") or 0
        blocks, p = c.get("blocksPerLevel", 1), c.get("dropout", 0)
        L, top = len(mults), s.size // s.patch
        res = [top // 2**i for i in range(L)]
        for r in c["attentionAt"]:
            if r not in res:
                raise ValueError(f"unet: attentionAt lists {r}, not one of the resolutions {res}")
        level_attn = [r in c["attentionAt"] for r in res[:-1]]
        chans = [base * m for m in mults]
        image = s.channels * s.patch**2
        block = lambda ci, co: ResBlock(ci, co, s.tdim, g, p)  # noqa: E731
        s.L, s.blocks, s.level_attn = L, blocks, level_attn

        s.tmlp = nn.Sequential(nn.Linear(base, s.tdim), nn.SiLU(), nn.Linear(s.tdim, s.tdim))
        s.inc = nn.Conv2d(image, base, 3, padding=1)
        down_in = [base] + chans[:-1]
        s.down = nn.ModuleList(block(down_in[i], chans[i]) for i in range(L))
        s.downx = nn.ModuleDict(
            {str(i): nn.ModuleDict({str(j): block(chans[i], chans[i]) for j in range(1, blocks)})
             for i in range(L) if blocks > 1}
        )
        s.ds = nn.ModuleList(nn.Conv2d(chans[i], chans[i], 3, stride=2, padding=1) for i in range(L - 1))
        s.dattn = nn.ModuleDict({str(i): Attention(chans[i], heads, g) for i in range(L - 1) if level_attn[i]})
        mid = chans[-1]
        s.mid1 = block(mid, mid)
        if res[-1] in c["attentionAt"]:
            s.attn = Attention(mid, heads, g)
        s.mid2 = block(mid, mid)
        up, ch = [], mid
        for i in reversed(range(L)):
            up.append((ch + chans[i], chans[i]))
            ch = chans[i]
        s.up = nn.ModuleList(block(ci, co) for ci, co in up)
        s.upx = nn.ModuleDict(
            {str(k): nn.ModuleDict({str(j): block(2 * co, co) for j in range(1, blocks)})
             for k, (_, co) in enumerate(up) if blocks > 1}
        )
        s.us = nn.ModuleList(nn.Conv2d(co, co, 3, padding=1) for _, co in up[: L - 1])
        s.uattn = nn.ModuleDict(
            {str(k): Attention(co, heads, g) for k, (_, co) in enumerate(up) if k > 0 and level_attn[L - 1 - k]}
        )
        out = image * (2 if c.get("learnSigma") else 1)  # learnSigma: eps, then v channels
        s.outn, s.outc = nn.GroupNorm(g, chans[0]), nn.Conv2d(chans[0], out, 3, padding=1)
        if s.classes:
            s.label_emb = _label_embedding(s.classes, s.tdim)

    def _down_blocks(s, i):
        return [s.down[i]] + ([s.downx[str(i)][str(j)] for j in range(1, s.blocks)] if s.blocks > 1 else [])

    def _up_blocks(s, k):
        return [s.up[k]] + ([s.upx[str(k)][str(j)] for j in range(1, s.blocks)] if s.blocks > 1 else [])

    def forward(s, x, t, labels=None):
        if labels is not None and not s.classes:
            raise ValueError("the network is unconditional (no classes): it takes no labels")
        want = (s.channels, s.size, s.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"unet: x must be [B, {', '.join(map(str, want))}], got {list(x.shape)}")
        te = s.tmlp(timestep_embedding(t, s.base).to(x.dtype))
        if s.classes:
            te = te + s.label_emb(_labels(labels, s.classes, x.shape[0], x.device))
        h = s.inc(F.pixel_unshuffle(x, s.patch) if s.patch > 1 else x)
        hs = []
        for i in range(s.L):
            blocks = s._down_blocks(i)
            for j, b in enumerate(blocks):
                h = b(h, te)
                if j < len(blocks) - 1:
                    hs.append(h)
            if i < s.L - 1 and str(i) in s.dattn:
                h = s.dattn[str(i)](h)
            hs.append(h)
            if i < s.L - 1:
                h = s.ds[i](h)
        h = s.mid1(h, te)
        if hasattr(s, "attn"):
            h = s.attn(h)
        h = s.mid2(h, te)
        for k in range(s.L):
            for b in s._up_blocks(k):
                h = b(torch.cat([h, hs.pop()], 1), te)
            if str(k) in s.uattn:
                h = s.uattn[str(k)](h)
            if k < s.L - 1:
                h = s.us[k](F.interpolate(h, scale_factor=2, mode="nearest"))
        out = s.outc(F.silu(s.outn(h)))
        return F.pixel_shuffle(out, s.patch) if s.patch > 1 else out


def build_network(config):
    """The module of a library configuration: the whole model's ({"network": ..., "schedule": ...},
    as in a checkpoint's `config` metadata, parsed) or the network's alone."""
    if "network" in config:
        for k in config:
            if k not in MODEL_KEYS:
                _refuse(f"model option {k!r}")
    net = config.get("network", config)
    kind = net.get("kind")
    if kind == "mlp":
        return MLP(net)
    if kind == "unet":
        return UNet(net)
    _refuse(f"network kind {kind!r}")
