"""Fair sizing for any pair of architectures: turn one architecture's width knob until its
parameter count matches a reference architecture's.

The knob is the registry's ``width_knob`` (the FFN width for the Transformers, the SSM state size
for Mamba-2). The count WITHOUT embeddings is matched (to the nearest knob value): it is the part
that differs between architectures; with the same vocabulary and width, the embeddings are equal
(untied) and the totals then agree even more closely. Counts come from building the model on the
``meta`` device (no memory, milliseconds), so any registered architecture works without a closed
form; the count must only grow with the knob.

The reference is built without attention layers (models/hybrid.py): the training's ``model_kwargs``
matches a hybrid, of the reference's own architecture too, to the pure reference model.

``model.match_by: layers`` matches by layer count instead (:func:`match_layers`): the registry's
``blocks_per_layer`` blocks per reference layer, widths as given.

``model.match: flops`` turns the same knob to the reference's training FLOPs per token instead
(forward + backward at the training length, the registry's formulas in :mod:`.flops`): matched
parameters are not matched compute (Mamba-2 matched to the default RetNet by parameters costs 4.0x its
FLOPs per token). The FLOPs of RetNet depend on its chunk length, measured per device type: a run is
matched on the device type it trains on.
"""

from __future__ import annotations

from archbench.errors import ConfigError

from .flops import train_flops_per_token
from .registry import get_arch
from .sizing import count

_MAX_WIDTH = 1 << 24
MATCH_BY = ("width", "layers")
MATCH = ("params", "flops")  # model.match: what the width knob is turned to
TOLERANCE = 0.02  # of the reference's non-embedding parameters (or training FLOPs per token)
_WHAT = {"params": "non-embedding parameters", "flops": "training FLOPs per token"}


def measure(quantity: str, device_type: str = "cpu"):
    """``(arch, hparams) -> number`` of the matched quantity: non-embedding parameters or training
    FLOPs per token (forward + backward at ``max_seq_len``)."""
    if quantity == "params":
        return lambda arch, hp: count(arch, hp, include_embeddings=False)
    if quantity == "flops":

        def flops(arch, hp):
            value = train_flops_per_token(arch, hp, device_type=device_type)
            if value is None:
                raise ConfigError(f"model.match: flops: {arch} has no FLOPs formula in the registry")
            return value

        return flops
    raise ConfigError(f"model.match: must be one of {MATCH}, got {quantity!r}")


def match_width(
    arch: str,
    hparams: dict,
    reference: str,
    reference_hparams: dict,
    quantity: str = "params",
    device_type: str = "cpu",
) -> int:
    """Value of ``arch``'s width knob whose non-embedding parameter count (``quantity="flops"``: training
    FLOPs per token) is nearest to that of ``reference`` built from ``reference_hparams``.

    Raises ConfigError when ``arch`` has no knob, or is larger than the reference even at knob 1.
    """
    knob = get_arch(arch).width_knob
    if knob is None:
        raise ConfigError(
            f"model.match_params: {arch} has no width knob in the registry; it cannot be matched to {reference}"
        )
    of, what = measure(quantity, device_type), _WHAT[quantity]
    target = of(reference, reference_hparams)

    def size(width: int) -> float:
        return of(arch, {**hparams, knob: width})

    if size(1) > target:
        raise ConfigError(
            f"model.match_to: {arch} has {size(1):.6g} {what} even with "
            f"{knob}=1, more than {reference}'s {target:.6g}; shrink {arch} (layers, widths)"
        )
    lo, hi = 1, max(2, int(hparams.get(knob) or 2))
    while size(hi) < target:  # grow the bracket: size(lo) <= target <= size(hi)
        lo, hi = hi, hi * 2
        if hi > _MAX_WIDTH:
            raise ConfigError(
                f"model.match_to: {arch} cannot reach {reference}'s {target:.6g} {what} by turning {knob}"
            )
    while hi - lo > 1:  # smallest width with size >= target lies in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) < target else (lo, mid)
    best = lo if target - size(lo) < size(hi) - target else hi
    if abs(size(best) - target) > TOLERANCE * target:  # the knob moves in steps too coarse (or not at all)
        raise ConfigError(
            f"model.match_to: {arch} cannot match {reference}'s {target:.6g} {what} within "
            f"{TOLERANCE:.0%} by turning {knob}: nearest sizes {size(lo):.6g} ({knob}={lo}) and {size(hi):.6g} ({knob}={hi})"
        )
    return best


def match_layers(arch: str, hparams: dict, reference: str, reference_hparams: dict) -> int:
    """Layers of ``arch`` matched by layer count: the registry's ``blocks_per_layer`` blocks of
    ``arch`` per layer of ``reference`` (Mamba-2 paper, arXiv 2405.21060: two Mamba blocks per
    Transformer layer, each about half a layer's parameters). The widths stay as given."""
    per = get_arch(arch).blocks_per_layer / get_arch(reference).blocks_per_layer
    return max(1, round(per * reference_hparams["layers"]))


def matched(
    arch: str,
    hparams: dict,
    reference: str,
    reference_hparams: dict,
    by: str = "width",
    quantity: str = "params",
    device_type: str = "cpu",
) -> dict:
    """``hparams`` with ``arch`` sized against ``reference``: ``by="width"`` turns the width knob to
    the reference's non-embedding parameter count, or with ``quantity="flops"`` its training FLOPs per
    token (:func:`match_width`); ``by="layers"`` sets the layer count (:func:`match_layers`)."""
    if by == "width":
        knob = get_arch(arch).width_knob
        return {**hparams, knob: match_width(arch, hparams, reference, reference_hparams, quantity, device_type)}
    if quantity != "params":
        raise ConfigError("model.match: flops turns the width knob; it cannot be combined with model.match_by: layers")
    if by == "layers":
        return {**hparams, "layers": match_layers(arch, hparams, reference, reference_hparams)}
    raise ConfigError(f"model.match_by: must be one of {MATCH_BY}, got {by!r}")


def match_ffn_dim(arch: str, **retnet_hparams) -> int:
    """FFN width for ``arch`` ("transformer" or "longnet") whose parameter count matches the RetNet
    built from ``retnet_hparams``; see :func:`match_width` (the general form)."""
    get_arch(arch)  # ValueError naming the registered architectures
    if arch == "retnet":
        raise ValueError(
            "match_ffn_dim sizes a Transformer/LongNet against a RetNet; arch must be 'transformer' or 'longnet'"
        )
    return match_width(arch, retnet_hparams, "retnet", retnet_hparams)
