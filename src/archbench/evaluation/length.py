"""Length extrapolation: ``run_length`` -> ``length.json`` (rule ``length``, one job per run).

On the held-out test tokens, the model reads non-overlapping windows of ``k * seq_len`` tokens for
every multiplier ``k`` (``length.multipliers``, training ``seq_len`` = the model's ``max_seq_len``)
and the next-token loss is averaged per position; positions are then grouped into geometric buckets
``[0, 1), [1, 2), [2, 4), ... , [2^j, k*seq_len)`` so a log-x plot has evenly spaced points.
Every multiplier reads the same number of tokens (``length.max_tokens``, fewer if the split is
shorter), windows are batched (``length.batch_size``) and never cross a token shard.

Modes: an architecture whose registry entry says ``beyond_context: chunkwise`` (RetNet) runs
chunkwise (``retention_mode="chunkwise"``, chunk = the model's ``chunk_size``) beyond its training
length, so memory grows linearly, not quadratically, with the context; the same function as the
parallel mode. Softmax-attention models run their one full-attention mode. A model
with *learned* absolute positions has no embedding past ``max_seq_len``: those multipliers are
recorded as ``{"skipped": reason}``, decided from the config before any forward (no error is swallowed).

The headline is the **same-target** comparison (it cannot be position bias): for k > 1, windows of
``k * seq_len + 1`` tokens lying inside one document (split on EOS; windows that cross documents only
when no document is long enough, and then ``aligned`` is false) have their LAST ``seq_len`` targets
scored twice: with the full ``k * seq_len`` context ("far") and with the context cut to the
``seq_len`` tokens before them ("near", the 1x reading). The per-window difference far - near is
stored; the report bootstraps it over windows. Position-free controls (a unigram and a bigram model
of the test split, scored through the same function on the same windows) are stored beside it: they
read the same target tokens with the same previous token, so their difference is 0 by construction,
where the earlier "beyond vs tail" buckets gave -0.027 / -0.011 nats for them at 4x.

Schema of ``length.json``::

    {"arch", "seq_len", "params", "device", "n_shards",
     "entries": [{"multiplier", "context", "mode", "n_windows", "n_tokens",
                  "mean_loss",          # over every position of every window
                  "tail_loss",          # positions [context/2, context): the last doubling
                  "buckets": [{"start", "end", "loss", "n"}, ...],       # n = scored positions
                  "same_targets": {"n_windows", "aligned", "targets",   # k > 1 only
                                   "far", "near": [per-window mean loss],
                                   "control": {"unigram": [far - near per window], "bigram": [...]}}
                                  | {"skipped": reason}}
                 | {"multiplier", "context", "skipped"}],
     "provenance": {...}}  # archbench.provenance.provenance_block: versions, hardware, hashes
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from archbench.evaluation.common import EvalError, EvalRun, arch_of, max_context

NO_WINDOW = "no window of"  # a context skipped for too little test data (the job fails if every one is)


def token_arrays(tokens) -> list[np.ndarray]:
    """The token shards of a split as a list of 1-D arrays: a path (``.bin``, ``index.json`` or a
    split directory) or a list of ``.bin`` paths, read through ``archbench.data.loader``."""
    from archbench.data import loader

    if hasattr(loader, "load_token_shards"):  # the sharded layout (results/tokens/{split}/index.json)
        return list(loader.load_token_shards(tokens))
    paths = [tokens] if isinstance(tokens, (str, os.PathLike)) else list(tokens)
    return [loader.load_tokens(os.fspath(p)) for p in paths]


def windows(shards: list[np.ndarray], context: int, max_windows: int | None) -> np.ndarray:
    """[n, context + 1] int64: consecutive non-overlapping windows, shard after shard, none crossing a shard."""
    out, left = [], max_windows if max_windows is not None else float("inf")
    for arr in shards:
        n = min((len(arr) - 1) // context, left)
        if n <= 0:
            continue
        idx = np.arange(n)[:, None] * context + np.arange(context + 1)[None]
        out.append(np.asarray(arr[idx], dtype=np.int64))
        left -= n
        if left <= 0:
            break
    return np.concatenate(out) if out else np.zeros((0, context + 1), np.int64)


def document_windows(shards: list[np.ndarray], context: int, eos: int | None, max_windows: int) -> tuple:
    """([n, context + 1] int64 windows lying inside one document each (documents split on ``eos``;
    non-overlapping, from the document's start), True); when no document is long enough, the
    consecutive windows of :func:`windows` and False."""
    out = []
    for arr in shards:
        if eos is None or len(out) >= max_windows:
            break
        ends = np.flatnonzero(np.asarray(arr) == eos)
        starts = np.concatenate([[0], ends + 1])
        stops = np.concatenate([ends, [len(arr)]])
        for a, b in zip(starts, stops):
            for i in range(int(a), int(b) - context, context):
                if len(out) >= max_windows:
                    break
                out.append(np.asarray(arr[i : i + context + 1], dtype=np.int64))
    if out:
        return np.stack(out), True
    return windows(shards, context, max_windows), False


class Ngram:
    """A position-free control: unigram (``order`` 1) or bigram (2) model of the test split, add-one
    smoothed. ``losses(batch)`` gives next-token losses [B, T] of windows [B, T + 1] like
    :func:`position_losses` (bigram counts are kept sparse: a dense V x V table would not fit)."""

    def __init__(self, shards: list[np.ndarray], vocab: int, order: int):
        self.order, self.vocab = order, vocab
        arrays = [np.asarray(a, dtype=np.int64) for a in shards if len(a)]
        ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        counts = np.bincount(ids, minlength=vocab).astype(np.float64)
        self.unigram = -np.log((counts + 1) / (counts.sum() + vocab))
        if order == 2:
            codes = np.concatenate([a[:-1] * vocab + a[1:] for a in arrays]) if arrays else ids
            self.codes, pair_counts = np.unique(codes, return_counts=True)
            self.pair_counts = pair_counts.astype(np.float64)
            self.prev = np.bincount(np.concatenate([a[:-1] for a in arrays]) if arrays else ids, minlength=vocab)

    def losses(self, batch: torch.Tensor) -> torch.Tensor:
        x, y = batch[:, :-1].cpu().numpy(), batch[:, 1:].cpu().numpy()
        if self.order == 1:
            return torch.from_numpy(self.unigram[y])
        code = x * self.vocab + y
        i = np.minimum(np.searchsorted(self.codes, code), max(len(self.codes) - 1, 0))
        hit = (self.codes[i] == code) if len(self.codes) else np.zeros(code.shape, bool)
        c = np.where(hit, self.pair_counts[i] if len(self.codes) else 0.0, 0.0)
        return torch.from_numpy(-np.log((c + 1) / (self.prev[x] + self.vocab)))


def same_target_losses(score, data: np.ndarray, seq_len: int, batch_size: int, device, **far_kw) -> tuple:
    """(far, near): per-window mean loss of the last ``seq_len`` targets of ``data`` [n, k*seq_len + 1],
    read with the whole window as context (far) and with only the ``seq_len`` tokens before them (near).
    ``score(batch, **kw)``: next-token losses [B, T] of windows [B, T + 1]."""
    far, near = [], []
    for i in range(0, len(data), batch_size):
        batch = torch.from_numpy(data[i : i + batch_size]).to(device)
        far.append(score(batch, **far_kw)[:, -seq_len:].double().mean(1).cpu())
        near.append(score(batch[:, -(seq_len + 1) :]).double().mean(1).cpu())
    return torch.cat(far).tolist(), torch.cat(near).tolist()


def measure_same_targets(model, shards, seq_len: int, k: int, eos, max_tokens: int, batch_size: int, device) -> dict:
    """The ``same_targets`` entry for multiplier ``k`` (schema above)."""
    context = k * seq_len
    data, aligned = document_windows(shards, context, eos, max(1, max_tokens // context))
    if not len(data):
        return {"skipped": f"{NO_WINDOW} {context + 1} tokens"}
    mode, kw = _mode(model, context)
    far, near = same_target_losses(
        lambda b, **f: position_losses(model, b, **f), data, seq_len, batch_size, device, **kw
    )
    vocab = max(int(max(int(np.asarray(a).max()) for a in shards if len(a)) + 1), int(model.config.vocab_size))
    control = {}
    for name, order in (("unigram", 1), ("bigram", 2)):
        f, n = same_target_losses(Ngram(shards, vocab, order).losses, data, seq_len, len(data), "cpu")
        control[name] = [a - b for a, b in zip(f, n)]
    return {
        "n_windows": int(len(data)),
        "aligned": aligned,
        "targets": seq_len,
        "mode": mode,
        "far": far,
        "near": near,
        "control": control,
    }


def geometric_buckets(context: int) -> list[tuple[int, int]]:
    edges = [0] + [2**j for j in range(int(np.log2(max(context, 1))) + 1) if 2**j < context] + [context]
    return list(zip(edges[:-1], edges[1:]))


def refuses(model, context: int) -> str | None:
    """Why the model cannot read ``context`` tokens at all (None: it can)."""
    if getattr(model.config, "position", None) == "learned" and context > max_context(model):
        return f"learned positions end at max_seq_len={max_context(model)}; context {context} has no position embedding"
    return None


def _mode(model, context: int) -> tuple[str, dict]:
    """The registry's ``beyond_context`` decides: "chunkwise" architectures (RetNet) are forced into
    their chunkwise mode past the training length; every other one runs as it is."""
    from archbench.models.registry import ARCHS

    entry = ARCHS.get(arch_of(model))
    if entry is not None and entry.beyond_context == "chunkwise":
        if context > max_context(model):
            return "chunkwise", {"retention_mode": "chunkwise"}
        return "parallel", {"retention_mode": "parallel"}
    return "full", {}


@torch.inference_mode()
def position_losses(model, batch: torch.Tensor, **forward_kw) -> torch.Tensor:
    """[B, T] next-token losses of windows ``batch`` [B, T + 1]."""
    x, y = batch[:, :-1], batch[:, 1:]
    logits = model(x, **forward_kw).logits
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none")


def measure_length(
    model, shards: list[np.ndarray], context: int, max_tokens: int, batch_size: int, device: torch.device
) -> dict:
    """One entry of ``length.json`` for one context length."""
    why = refuses(model, context)
    if why:
        return {"context": context, "skipped": why}
    data = windows(shards, context, max(1, max_tokens // context))
    if not len(data):  # a small test split: this context is skipped (run_length fails if every one is)
        total = sum(len(a) for a in shards)
        return {
            "context": context,
            "skipped": f"the test split has {total} tokens in {len(shards)} shard(s): {NO_WINDOW} {context + 1} tokens",
        }
    mode, kw = _mode(model, context)
    sums = torch.zeros(context, dtype=torch.float64)
    for i in range(0, len(data), batch_size):
        batch = torch.from_numpy(data[i : i + batch_size]).to(device)
        sums += position_losses(model, batch, **kw).double().sum(0).cpu()
    per_pos = sums / len(data)
    buckets = [
        {"start": s, "end": e, "loss": float(per_pos[s:e].mean()), "n": (e - s) * len(data)}
        for s, e in geometric_buckets(context)
    ]
    return {
        "context": context,
        "mode": mode,
        "n_windows": int(len(data)),
        "n_tokens": int(len(data) * context),
        "mean_loss": float(per_pos.mean()),
        "tail_loss": float(per_pos[context // 2 :].mean()),
        "buckets": buckets,
    }


def run_length(
    model_dir: str,
    tokens,
    out_json: str | None,
    multipliers=(1, 2, 4, 8),
    max_tokens: int = 32768,
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "fp32",
    threads: int | None = None,
) -> dict:
    """Loss per position bucket at k x the training length for every k (schema above)."""
    with EvalRun("length", locals()) as run:
        model, dev = run.model, run.device
        eos = getattr(run.tokenizer, "eos_token_id", None)
        shards = token_arrays(tokens)
        seq_len = max_context(model)
        entries = []
        for k in sorted(set(multipliers)):
            entry = {"multiplier": k, **measure_length(model, shards, k * seq_len, max_tokens, batch_size, dev)}
            if k > 1 and "mean_loss" in entry:
                entry["same_targets"] = measure_same_targets(
                    model, shards, seq_len, k, eos, max_tokens, batch_size, dev
                )
            entries.append(entry)
            logging.getLogger(__name__).info("length k=%s: %s", k, entry.get("mean_loss", entry.get("skipped")))
        short = [e["skipped"] for e in entries if NO_WINDOW in e.get("skipped", "")]
        if short and not any("mean_loss" in e for e in entries):
            raise EvalError(f"{short[0]}; lower length.multipliers or use more test data")
        return run.finish(
            {
                "arch": arch_of(model),
                "seq_len": seq_len,
                "params": run.params,
                "device": str(dev),
                "n_shards": len(shards),
                "entries": entries,
            }
        )
