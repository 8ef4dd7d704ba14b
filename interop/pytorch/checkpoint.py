"""The library's model files (src/io/model_file.ts) to PyTorch and back.

A model file is a safetensors file: the raw weights under their state_dict names, the EMA weights
under `ema.<name>`, Adam's moments under `optimizer.m.<name>` / `optimizer.v.<name>` (with the
`optimizer_step` metadata), and the metadata `format` ("deno-diffusion/model@1"), `config` (the
model's configuration as JSON) and `steps_trained`. A file saved with `{ only: "ema" }` holds one
set of weights under the plain names (metadata `weights`: "ema" or "raw").

    ckpt = load_checkpoint("model.safetensors")            # a Checkpoint
    net = ckpt.network("ema")                               # the module with the EMA (or raw) weights
    save_checkpoint("out.safetensors", ckpt.config, raw=net.state_dict(), ema=None,
                    steps_trained=ckpt.steps_trained)        # loadModel("out.safetensors") reads it
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from models import build_network  # noqa: E402

MODEL_FORMAT = "deno-diffusion/model@1"
EMA_PREFIX = "ema."
OPT_M, OPT_V = "optimizer.m.", "optimizer.v."
TIMESTEP_STATS = ("timesteps.loss", "timesteps.count")
# Metadata the library writes itself; save_checkpoint sets them, `extra` cannot override them.
OWN_KEYS = {"format", "config", "steps_trained", "optimizer_step", "weights"}


class Checkpoint:
    """A loaded model file: `config` (dict), `raw` and `ema` (state_dicts; `ema` None when the
    file has none), `m`, `v` and `optimizer_step` (Adam's moments, None when absent),
    `steps_trained`, and `metadata` (every metadata string)."""

    def __init__(s, config, raw, ema, m, v, optimizer_step, steps_trained, metadata):
        s.config, s.raw, s.ema, s.m, s.v = config, raw, ema, m, v
        s.optimizer_step, s.steps_trained, s.metadata = optimizer_step, steps_trained, metadata

    def network(s, weights="ema"):
        """The module (eval mode) with the EMA weights (the raw ones when there are none) or the
        raw weights."""
        net = build_network(s.config)
        net.load_state_dict(s.ema if weights == "ema" and s.ema is not None else s.raw)
        return net.eval()


def load_checkpoint(path):
    """Reads a model file of the library; raises ValueError when it is not one or does not fit its
    configuration, NotImplementedError when models.py lacks its network's options."""
    tensors, meta = safetensors_io.load(path)
    if meta.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a model file of the library (format {meta.get('format')!r})")
    config = json.loads(meta["config"])
    names = list(build_network(config).state_dict().keys())

    def part(prefix):
        found = {n: tensors[prefix + n] for n in names if prefix + n in tensors}
        if prefix and not found:
            return None
        missing = [prefix + n for n in names if n not in found]
        if missing:
            raise ValueError(f"{path}: tensors missing: {', '.join(missing[:5])}")
        return {n: t.float() for n, t in found.items()}

    known = {p + n for p in ("", EMA_PREFIX, OPT_M, OPT_V) for n in names} | set(TIMESTEP_STATS)
    unknown = [n for n in tensors if n not in known]
    if unknown:
        raise ValueError(f"{path}: tensors not part of the configured network: {', '.join(unknown[:5])}")
    m, v = part(OPT_M), part(OPT_V)
    if (m is None) != (v is None):
        raise ValueError(f"{path}: holds only one of the optimizer's two moments")
    return Checkpoint(
        config, part(""), part(EMA_PREFIX), m, v,
        int(meta["optimizer_step"]) if m is not None else None,
        int(meta.get("steps_trained", "0")), meta,
    )


def save_checkpoint(path, config, raw, ema=None, steps_trained=0, m=None, v=None, optimizer_step=None,
                    extra=None):
    """Writes a model file the library's loadModel reads (atomically): `raw` (a state_dict with
    the library's names, e.g. module.state_dict()), `ema` (another, or None), Adam's moments `m`,
    `v` (state_dicts of exp_avg / exp_avg_sq, or None) at `optimizer_step`, and `extra` metadata
    strings (e.g. training settings). Every tensor is written as float32."""
    names = list(build_network(config).state_dict().keys())
    for label, sd in (("raw", raw), ("ema", ema), ("m", m), ("v", v)):
        if sd is not None and set(sd.keys()) != set(names):
            raise ValueError(f"{label} weights do not match the configured network's names")
    if (m is None) != (v is None) or (m is not None and optimizer_step is None):
        raise ValueError("pass both moments m and v, and optimizer_step, or none of them")
    tensors = {}
    for prefix, sd in (("", raw), (EMA_PREFIX, ema), (OPT_M, m), (OPT_V, v)):
        if sd is not None:
            for n in names:
                t = sd[n].detach().to("cpu", torch.float32)
                if prefix in ("", EMA_PREFIX) and not torch.isfinite(t).all():
                    raise ValueError(f"tensor {prefix + n} is not finite: the training diverged")
                tensors[prefix + n] = t
    meta = {k: str(val) for k, val in (extra or {}).items() if k not in OWN_KEYS}
    meta.update(format=MODEL_FORMAT, config=json.dumps(config, separators=(",", ":")),
                steps_trained=str(int(steps_trained)))
    if m is not None:
        meta["optimizer_step"] = str(int(optimizer_step))
    safetensors_io.save(path, tensors, meta)
