"""Mixed precision through torch.autocast: bf16 (no scaler needed), fp16 (with a GradScaler), or fp32.

Parameters and optimizer state stay fp32; only the forward's matmuls run in the lower precision,
so the generated adapters and the saved checkpoint are fp32 whatever the precision.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from hxtool.errors import HxError

PRECISIONS = ("bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def default_precision(device: torch.device | str) -> str:
    """bf16 on CUDA devices that support it, fp32 everywhere else (CPU autocast is rarely faster)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def resolve_precision(name: str | None, device: torch.device | str) -> str:
    if name is None:
        return default_precision(device)
    if name not in PRECISIONS:
        raise HxError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "fp16" and torch.device(device).type != "cuda":
        raise HxError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return name


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """The forward pass's context: autocast to bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def grad_scaler(precision: str, device: torch.device | str):
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
    if precision != "fp16":
        return None
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler(torch.device(device).type)
    return torch.cuda.amp.GradScaler()
