"""The runs a report's questions read, and the join of per-run evaluation files onto them.

A run's identity (arch, seed, grid values) is its ``metrics.json``. An evaluation file is joined to its
run by folder: the evaluation's folder and the run's folder share their trailing path components
(``<arch>/<point>/seed~<n>`` in rules/common.smk's layout), compared as opaque strings — no field is
parsed out of a path. An evaluation folder inside the run folder joins to it as well.
"""

from __future__ import annotations

import json
import os

import pandas as pd

# The model-shape settings that define a size: a scaling ladder's sizes are joined across architectures
# by these grid values (never by position, nor by parameter counts, which matching leaves ~0.1% apart).
SIZE_KEYS = ("embed_dim", "ffn_dim", "heads", "layers")

COLUMNS = [
    "run_dir",
    "arch",
    "point",
    "seed",
    "val_loss",
    "test_loss",
    "params",
    "size_key",
    "tokens",
    "flops",
    "embed_dim",
    "learning_rate",
]


def read_json(path: str):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run_metrics(run_dir: str) -> dict:
    """A run folder's metrics.json ({} when missing or unreadable)."""
    try:
        return read_json(os.path.join(run_dir, "metrics.json"))
    except (OSError, ValueError):
        return {}


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in os.path.normpath(os.path.abspath(path)).split(os.sep) if p)


def _grid_labels(hparams: list[dict]) -> list[str]:
    """Each run's grid point as ``key=value, ...`` over the settings that differ between the runs of the
    report (the grid's searched keys); ``default`` when none differ."""
    keys = sorted({k for hp in hparams for k in hp})
    varying = [
        k
        for k in keys
        if k != "seed" and len({json.dumps(hp.get(k), sort_keys=True, default=str) for hp in hparams}) > 1
    ]
    return [", ".join(f"{k}={hp.get(k)}" for k in varying) or "default" for hp in hparams]


def size_key(hparams: dict, params) -> str:
    """A run's size as ``embed_dim=.., ffn_dim=.., ...`` of its configured shape (:data:`SIZE_KEYS`);
    its parameter count when no shape setting was recorded."""
    shape = [f"{k}={hparams[k]}" for k in SIZE_KEYS if hparams.get(k) is not None]
    return ", ".join(shape) if shape else f"params={params}"


def runs_frame(metrics_paths) -> pd.DataFrame:
    """One row per existing metrics.json: its folder (the join key), identity and the numbers the
    questions use."""
    found = [(p, read_json(p)) for p in metrics_paths or [] if os.path.exists(p)]
    labels = _grid_labels([m.get("hparams", {}) for _, m in found])
    rows = []
    for (path, m), point in zip(found, labels):
        hp = m.get("hparams", {})
        n = m.get("params_non_embedding")
        rows.append(
            {
                "run_dir": os.path.dirname(os.path.abspath(path)),
                "arch": m["arch"],
                "point": point,
                "seed": int(m["seed"]),
                "val_loss": m.get("val_loss"),
                "test_loss": m.get("test_loss"),
                "params": n,
                "size_key": size_key(hp, n),
                "tokens": m.get("tokens_seen"),
                # the architecture's own training FLOPs per token (as trained) x tokens seen; older runs: none
                "flops": m["train_flops_per_token"] * m["tokens_seen"]
                if m.get("train_flops_per_token") and m.get("tokens_seen")
                else None,
                "embed_dim": hp.get("embed_dim"),
                "learning_rate": hp.get("learning_rate"),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def run_of(path: str, runs: pd.DataFrame) -> dict:
    """The row of ``runs`` whose folder ``path`` (an evaluation file) belongs to."""
    folder = _parts(os.path.dirname(path))
    best, score, tie = None, 0, False
    for row in runs.to_dict("records"):
        run = _parts(row["run_dir"])
        if folder[: len(run)] == run:  # the evaluation folder is inside the run folder
            return row
        shared = 0
        while shared < min(len(run), len(folder)) and run[-1 - shared] == folder[-1 - shared]:
            shared += 1
        if shared > score:
            best, score, tie = row, shared, False
        elif shared == score and shared:
            tie = True
    if best is None or tie:
        raise ValueError(f"{path}: no run's metrics.json shares its folder (arch/point/seed) — was the run trained?")
    return best


def load(paths, runs: pd.DataFrame) -> list[tuple[dict, dict]]:
    """(run row, file contents) for every existing evaluation file in ``paths``."""
    return [(run_of(p, runs), read_json(p)) for p in paths or [] if os.path.exists(p)]
