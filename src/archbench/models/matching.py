"""Fair sizing for any pair of architectures: turn one architecture's width knob until its
parameter count matches a reference architecture's.

The knob is the registry's ``width_knob`` (the FFN width for the Transformers, the SSM state size
for Mamba-2). The count WITHOUT embeddings is matched (to the nearest knob value): it is the part
that differs between architectures; with the same vocabulary and width, the embeddings are equal
(untied) and the totals then agree even more closely. Counts come from building the model on the
``meta`` device (no memory, milliseconds), so any registered architecture works without a closed
form; the count must only grow with the knob.
"""

from __future__ import annotations

import functools
import json

from archbench.errors import ConfigError

_MAX_WIDTH = 1 << 24
TOLERANCE = 0.02  # of the reference's non-embedding parameters


def _freeze(hparams: dict) -> str:
    return json.dumps(hparams, sort_keys=True)  # hashable, and nested settings (model.hf) too


@functools.lru_cache(maxsize=4096)
def _count(arch: str, frozen: str, include_embeddings: bool) -> int:
    import torch

    from .sizing import build_model, count_parameters

    with torch.device("meta"):
        model = build_model(arch, **json.loads(frozen))
    return count_parameters(model, include_embeddings)


def count(arch: str, hparams: dict, include_embeddings: bool = True) -> int:
    """Parameters of ``arch`` built from pipeline names ``hparams`` (meta device: nothing allocated)."""
    return _count(arch, _freeze(hparams), include_embeddings)


def match_width(arch: str, hparams: dict, reference: str, reference_hparams: dict) -> int:
    """Value of ``arch``'s width knob whose non-embedding parameter count is nearest to that of
    ``reference`` built from ``reference_hparams``.

    Raises ConfigError when ``arch`` has no knob, or is larger than the reference even at knob 1.
    """
    from .registry import get_arch

    knob = get_arch(arch).width_knob
    if knob is None:
        raise ConfigError(
            f"model.match_params: {arch} has no width knob in the registry; it cannot be matched to {reference}"
        )
    target = count(reference, reference_hparams, include_embeddings=False)

    def size(width: int) -> int:
        return count(arch, {**hparams, knob: width}, include_embeddings=False)

    if size(1) > target:
        raise ConfigError(
            f"model.match_to: {arch} has {size(1)} non-embedding parameters even with "
            f"{knob}=1, more than {reference}'s {target}; shrink {arch} (layers, widths)"
        )
    lo, hi = 1, max(2, int(hparams.get(knob) or 2))
    while size(hi) < target:  # grow the bracket: size(lo) <= target <= size(hi)
        lo, hi = hi, hi * 2
        if hi > _MAX_WIDTH:
            raise ConfigError(
                f"model.match_to: {arch} cannot reach {reference}'s {target} non-embedding parameters by turning {knob}"
            )
    while hi - lo > 1:  # smallest width with size >= target lies in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) < target else (lo, mid)
    best = lo if target - size(lo) < size(hi) - target else hi
    if abs(size(best) - target) > TOLERANCE * target:  # the knob moves in steps too coarse (or not at all)
        raise ConfigError(
            f"model.match_to: {arch} cannot match {reference}'s {target} non-embedding parameters within "
            f"{TOLERANCE:.0%} by turning {knob}: nearest sizes {size(lo)} ({knob}={lo}) and {size(hi)} ({knob}={hi})"
        )
    return best
