"""The hyperparameter grid of a config: which `grid` entries are searched axes, and their points.

Plain functions of the config dict (no schema, no registry), so that any layer may read the grid: the
config check, the evaluation registry's timed point and the Snakefile.
"""

from __future__ import annotations

import itertools

# Settings whose value is a list: a grid entry of one of them is an axis only as a list of lists.
LIST_SETTINGS = ("betas", "segment_lengths", "dilated_ratios", "attention_layers")


def is_axis(key: str, value) -> bool:
    """A grid entry is searched over when it is a list (of lists, for list-valued settings)."""
    if key in LIST_SETTINGS:
        return isinstance(value, list) and all(isinstance(v, list) for v in value)
    return isinstance(value, list)


def grid_axes(config: dict) -> dict[str, list]:
    """The searched axes, in config order."""
    return {k: v for k, v in config["grid"].items() if is_axis(k, v)}


def grid_points(config: dict) -> list[dict]:
    axes = grid_axes(config)
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
