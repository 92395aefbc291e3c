"""Device choice for the torch code paths: ``auto`` takes CUDA when present, else the CPU."""
from __future__ import annotations

from functools import lru_cache

from .errors import UserError

DEVICES = ("auto", "cpu", "cuda")


@lru_cache(maxsize=1)
def has_cuda() -> bool:
    """True when torch imports and sees a usable CUDA device (computed once)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str | None = "auto") -> str:
    """Map ``auto|cpu|cuda`` (or ``cuda:N``) to a concrete torch device string."""
    device = device or "auto"
    if device == "auto":
        return "cuda" if has_cuda() else "cpu"
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        if not has_cuda():
            raise UserError(f"--device {device}: no CUDA device is available on this machine (use --device cpu or auto)")
        return device
    raise UserError(f"--device {device!r}: expected one of auto, cpu, cuda")
