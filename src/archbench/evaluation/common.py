"""Shared by the evaluation modules: the error type, device choice and loading a saved run."""

from __future__ import annotations

import contextlib
import os

import torch

from archbench.errors import ArchbenchError


class EvalError(ArchbenchError):
    """An evaluation cannot run as configured (unknown task, hub task offline, bad model dir)."""


def resolve_device(device: str = "auto") -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error, not a fallback."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvalError(f"device {device!r} requested but CUDA is not available (use 'cpu' or 'auto')")
    return dev


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Use ``threads`` CPU threads inside the block (None = leave torch's setting), then restore."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_model(model_dir: str | os.PathLike, device: str = "auto"):
    """(model in eval mode on ``device``, tokenizer, torch.device) of a ``save_pretrained`` folder
    (a run's ``model/``: weights + config + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from archbench.models import register

    register()  # the archbench model types with AutoModelForCausalLM

    model_dir = os.fspath(model_dir)
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise EvalError(f"{model_dir}: not a saved model (no config.json); expected a run's model/ folder")
    dev = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(dev).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer, dev


def arch_of(model) -> str:
    # hf-<type> entries store their name in the stock config (models/hf.py)
    arch = getattr(model, "arch", None) or getattr(model.config, "archbench_arch", None)
    return arch or model.config.model_type.removeprefix("archbench_")


def max_context(model) -> int:
    """The context the model was trained for: ``max_position_embeddings`` (archbench maps its
    ``max_seq_len`` onto it; the wrapped llama / mamba2 configs store it)."""
    return int(model.config.max_position_embeddings)
