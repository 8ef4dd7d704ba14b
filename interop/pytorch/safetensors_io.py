"""Reading and writing safetensors files by hand (standard library + torch, no `safetensors` package).

The format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON naming each
tensor's dtype, shape and data_offsets [begin, end) (relative to the end of the header), plus an
optional "__metadata__" object of strings, then the raw little-endian tensor data.

The library's writer (src/io/safetensors.ts) writes only F32 and pads the header with spaces to a
multiple of 8 bytes; its reader takes only F32. Here every common dtype is read and written; use F32
for files the library is to load.

    tensors, metadata = load("model.safetensors")
    save("copy.safetensors", tensors, metadata)   # atomic: temp file, fsync, rename
"""
import json
import os
import secrets
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}

if sys.byteorder != "little":
    raise ImportError("safetensors_io reads and writes tensors in the host's byte order: little-endian only")


def _from_bytes(raw, dtype, shape):
    """A tensor of `dtype` and `shape` from little-endian bytes (copied, writable)."""
    if len(raw) == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)


def _to_bytes(t):
    """The little-endian bytes of a tensor, row-major."""
    t = t.detach().cpu().contiguous()
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def load(path):
    """Reads a safetensors file: (dict name -> tensor in file order, dict of metadata strings)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: truncated, not even the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: the header claims {n} bytes, the file has {len(raw)}")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"{path}: metadata values must be strings")
    data, tensors, spans = raw[8 + n :], {}, []
    for name, info in header.items():
        dtype = DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')}")
        shape, (b, e) = list(info["shape"]), info["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        size = count * torch.empty((), dtype=dtype).element_size()
        if not (0 <= b <= e <= len(data)) or e - b != size:
            raise ValueError(f"{path}: tensor {name}: data_offsets [{b}, {e}] do not hold shape {shape}")
        spans.append((b, e, name))
        tensors[name] = _from_bytes(data[b:e], dtype, shape)
    at = 0
    for b, e, name in sorted(spans):
        if b != at:
            raise ValueError(f"{path}: tensor {name} starts at byte {b}, expected {at} (a hole or overlap)")
        at = e
    if at != len(data):
        raise ValueError(f"{path}: the tensors cover {at} bytes of data, the file holds {len(data)}")
    order = {name: b for b, _, name in spans}
    return dict(sorted(tensors.items(), key=lambda kv: order[kv[0]])), dict(metadata)


def encode(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` (in the given order) and `metadata`."""
    header, blobs, offset = {"__metadata__": {str(k): str(v) for k, v in (metadata or {}).items()}}, [], 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("a tensor cannot be called __metadata__")
        if t.dtype not in NAMES:
            raise ValueError(f"tensor {name} has unsupported dtype {t.dtype}")
        b = _to_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-(8 + len(head)) % 8)  # the data starts 8-byte aligned, as our writer does
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def save(path, tensors, metadata=None):
    """Writes `tensors` and `metadata` to `path` atomically: a temporary file in the same folder
    (named like the library's, `.NAME.XXXXXXXX.tmp`, so its stale-file cleanup knows it), flushed
    to the disk, then renamed over the target."""
    folder, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "xb") as f:
            f.write(encode(tensors, metadata))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
