"""Shared by the evaluation modules: the error type, device choice, loading a saved run, and
:class:`EvalRun`, what every evaluation does around its measurement. Torch is imported when a function
needs it, not on import: a plugin's one module imports :class:`EvalRun` at its top and stays torch-free
for the Snakefile parse."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from archbench.errors import ArchbenchError
from archbench.io import atomic_file, write_json
from archbench.provenance import now

if TYPE_CHECKING:
    import torch


class EvalError(ArchbenchError):
    """An evaluation cannot run as configured (unknown task, hub task offline, bad model dir)."""


def resolve_device(device: str = "auto") -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error, not a fallback."""
    import torch

    from archbench.devices import require_device  # imports torch

    require_device("eval.device", device)
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvalError(f"device {device!r} requested but CUDA is not available (use 'cpu' or 'auto')")
    return dev


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Use ``threads`` CPU threads inside the block (None = leave torch's setting), then restore."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # the torch dtype of each name


def load_model(model_dir: str | os.PathLike, device: str = "auto", dtype: str = "fp32"):
    """(model in eval mode on ``device`` in ``dtype`` (fp32 / bf16 / fp16), tokenizer, torch.device) of a
    ``save_pretrained`` folder (a run's ``model/``: weights + config + tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from archbench.models import register

    register()  # the archbench model types with AutoModelForCausalLM

    model_dir = os.fspath(model_dir)
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise EvalError(f"{model_dir}: not a saved model (no config.json); expected a run's model/ folder")
    if dtype not in DTYPES:
        raise EvalError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    dev = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(dev, getattr(torch, DTYPES[dtype])).eval()
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


# where and how fast, not what is measured (token data is identified by its fingerprint instead)
NOT_SETTINGS = ("model_dir", "out_json", "device", "threads", "tokens")


def eval_settings(evaluation: str, arguments: dict) -> dict:
    """What an evaluation measured with: its name and arguments, less paths, device and threads
    (the provenance block records device and threads itself). Hashed into its provenance block."""
    return {"evaluation": evaluation, **{k: v for k, v in arguments.items() if k not in NOT_SETTINGS}}


def eval_provenance(settings: dict, model_dir, model, device, started: str, tokens=None) -> dict:
    """The provenance block of an evaluation output: its settings, the model dir's saved tokenizer,
    the device, the model's dtype and the fingerprint of the token split it read (``tokens``)."""
    from archbench.provenance import provenance_block, token_index_paths

    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    indexes = token_index_paths([tokens] if isinstance(tokens, (str, os.PathLike)) else tokens or [])
    return provenance_block(
        settings=settings,
        tokenizer_dir=model_dir,
        token_indexes=indexes,
        device=device,
        precision=dtype,
        started=started,
    )


class EvalRun:
    """What every evaluation does around its measurement, as a context::

        def run_x(model_dir, out_json, ..., device="auto", dtype="fp32", threads=None):
            with EvalRun("x", locals()) as run:   # the call's arguments, first thing in the function
                ...                               # run.model, run.tokenizer, run.device, run.threads
                return run.finish({...})          # + provenance, written atomically to out_json

    On entering: the settings (:func:`eval_settings` of the arguments), the start time, ``threads`` torch
    CPU threads (restored on leaving; ``run.threads`` is the count in use) and the model loaded from
    ``model_dir`` on ``device`` in ``dtype``."""

    def __init__(self, evaluation: str, arguments: dict):
        self.arguments = dict(arguments)
        self.settings = eval_settings(evaluation, self.arguments)
        self._threads = torch_threads(self.arguments.get("threads"))

    def __enter__(self) -> EvalRun:
        self.started, self._start = now(), time.perf_counter()
        self._threads.__enter__()
        try:
            import torch

            self.threads = torch.get_num_threads()
            a = self.arguments
            self.model, self.tokenizer, self.device = load_model(
                a["model_dir"], a.get("device", "auto"), a.get("dtype", "fp32")
            )
        except BaseException:
            self._threads.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self._threads.__exit__(*exc)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._start

    @property
    def params(self) -> int:
        from archbench.models.spec import count_parameters

        return count_parameters(self.model)

    def provenance(self) -> dict:
        """The provenance block of this run's output (the token split it read: argument ``tokens``)."""
        a = self.arguments
        return eval_provenance(self.settings, a["model_dir"], self.model, self.device, self.started, a.get("tokens"))

    def finish(self, result: dict, out: str = "out_json") -> dict:
        """``result`` with its provenance block, written (atomically) to the path argument ``out`` when
        one was given; returned."""
        result["provenance"] = self.provenance()
        if self.arguments.get(out):
            write_json(result, self.arguments[out])
        return result

    def write_text(self, out: str, text: str) -> None:
        """``text`` written (atomically) to the path argument ``out`` when one was given."""
        if self.arguments.get(out):
            with atomic_file(self.arguments[out]) as tmp:
                tmp.write_text(text, encoding="utf-8")
