"""Refuse a forced accelerator this machine does not have, before a job starts work.

Training (``training.accelerator``) and evaluation (``eval.device``) call :func:`require_device` where
they pick their device: "auto" / "cpu" always pass; "gpu" / "cuda" (and "mps") without that device fail
with one line naming the config key, instead of a library traceback after data and model are loaded.
"""

from __future__ import annotations

import os

import torch

from archbench.errors import ConfigError


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return torch.cuda.is_available() or torch.backends.mps.is_available()  # Lightning's "gpu": CUDA or MPS


def require_device(key: str, value) -> None:
    """Raise :class:`ConfigError` when ``value`` (of config key ``key``) forces a device that is absent."""
    kind = str(value).split(":")[0].lower() if value is not None else "auto"
    if kind not in ("gpu", "cuda", "mps") or _available(kind):
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    raise ConfigError(
        f"{key}: {value!r} needs a {'CUDA' if kind != 'mps' else 'MPS'} device but this machine has none "
        f"(torch.cuda.is_available() is False{'' if visible is None else f', CUDA_VISIBLE_DEVICES={visible!r}'}): "
        "set it to 'auto' or 'cpu', or run the job where a GPU is allocated"
    )
