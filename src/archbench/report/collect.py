"""Collect every run's metrics.json (and optional per-run evaluation files) into one table:
one row per architecture x grid point x seed.

The runs come as records built from the config (rules/common.smk `run_records`): arch, seed, the grid
point's label and values, and the paths of the run's files. A run's arch, seed and grid values are read
from its metrics.json (which records them); a run whose files are missing still gets its row, from the
record, with `status` = missing: a partial grid is reported, not a crash. Folder names are never parsed.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from archbench.evaluation.registry import EVALUATIONS
from archbench.io import atomic_file
from archbench.provenance import worst_flag

# Leading columns, in the order a reader scans them (the original study's first); every metric follows.
KEY_COLUMNS = ["arch", "point", "seed", "learning_rate", "embed_dim", "ffn_dim", "heads", "seq_len", "layers", "status"]
DROP = {"hparams", "model_config", "arch", "seed", "provenance"}
# Where a run's numbers came from (metrics.json's provenance block); the summary warns when they differ.
PROVENANCE_COLUMNS = ["settings_hash", "commit", "archbench", "versions", "hardware", "data_fingerprint"]
UNKNOWN = "unknown"  # older runs wrote no provenance block


def provenance_columns(metrics: dict) -> dict:
    """settings_hash, commit (``-dirty`` when the tree had changes), archbench version, package versions
    (``name=version`` joined), hardware (the GPU when one was used, else the CPU) and data fingerprint."""
    block = metrics.get("provenance") or {}
    git = block.get("git") or {}
    gpu = block.get("gpu") or {}
    commit = git.get("commit")
    versions = block.get("versions") or {}
    return {
        "settings_hash": block.get("settings_hash") or UNKNOWN,
        "commit": (commit + ("-dirty" if git.get("dirty") else "")) if commit else UNKNOWN,
        "archbench": block.get("archbench") or UNKNOWN,
        "versions": " ".join(f"{k}={v}" for k, v in sorted(versions.items())) or UNKNOWN,
        "hardware": (
            f"gpu: {gpu['name']}" if gpu.get("name") else f"cpu: {block['cpu']}" if block.get("cpu") else UNKNOWN
        ),
        "data_fingerprint": block.get("data_fingerprint") or UNKNOWN,
    }


def run_record(arch: str, seed: int, point: str, values: dict, **files: str) -> dict:
    """One expected run: `point` labels its grid point (any string), `values` are the point's grid
    values, `files` the paths of its per-run files by name (metrics, harness, latency, ...)."""
    return {"arch": arch, "seed": seed, "point": point, "values": dict(values), "files": files}


def identity(record: dict, metrics: dict | None) -> dict:
    """{arch, point, seed, <grid key>: value} of a run: from its metrics.json when there is one
    (arch, seed, hparams), else from its record."""
    row = {"arch": record["arch"], "point": record["point"], "seed": record["seed"], **record["values"]}
    if metrics is not None:
        hparams = metrics.get("hparams", {})
        row.update(
            arch=metrics["arch"], seed=metrics["seed"], **{k: hparams[k] for k in record["values"] if k in hparams}
        )
    return row


def metrics_columns(metrics: dict) -> dict:
    """Scalar hyperparameters, then every scalar metric of one metrics.json."""
    row = {k: v for k, v in metrics.get("hparams", {}).items() if not isinstance(v, (dict, list))}
    # The FFN width actually used (it differs from the grid's when parameters are matched).
    row["ffn_dim_model"] = metrics.get("model_config", {}).get("ffn_dim")
    row.update({k: v for k, v in metrics.items() if k not in DROP and not isinstance(v, (dict, list))})
    row.setdefault("train_flops_per_token", None)  # older runs: empty, not a missing column
    row.update(provenance_columns(metrics))
    return row


def scalar_columns(name: str, data: dict) -> dict:
    """`<name>/<key>` of every scalar top-level key (any other per-run JSON file)."""
    return {f"{name}/{k}": v for k, v in data.items() if isinstance(v, (int, float, str))}


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def collect(runs: list[dict]) -> pd.DataFrame:
    """One row per run record (see :func:`run_record`). Its `metrics` file gives the metrics; every other
    file adds `<name>_status` (ok / missing) and its flattened columns (its evaluation entry's `flatten`;
    a name without one: its scalar top-level keys)."""
    rows = []
    for run in runs:
        files = dict(run["files"])
        metrics = _read_json(files.pop("metrics"))
        row = identity(run, metrics)
        row["status"] = "ok" if metrics is not None else "missing"
        if metrics is not None:
            row.update(metrics_columns(metrics))
            row.update(identity(run, metrics))  # the hparams columns must not override the run's identity
        for name, path in files.items():
            data = _read_json(path)
            row[f"{name}_status"] = "ok" if data is not None else "missing"
            if data is not None:
                flatten = getattr(EVALUATIONS.get(name), "flatten", None)
                row.update(flatten(data) if flatten else scalar_columns(name, data))
        # one flag per run for every timing it carries (training tokens/s, latency): the summary drops flagged ones
        row["train_timing_flag"] = row.get("timing_flag", "")
        row["timing_flag"] = worst_flag([row["train_timing_flag"], row.get("latency/timing_flag")])
        row["run_dir"] = os.path.dirname(run["files"]["metrics"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    lead = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame[lead + [c for c in frame.columns if c not in lead]]


def write_csv(frame: pd.DataFrame, out_csv: str) -> None:
    with atomic_file(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
