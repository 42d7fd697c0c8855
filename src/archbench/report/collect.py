"""Collect every run's metrics.json (and optional per-run evaluation files) into one table:
one row per architecture x grid point x seed.

A run is identified by its path, `.../{arch}/{key~value/...}/seed~{s}/<file>` (the Paramspace
layout of rules/common.smk), so a run whose files are missing still gets its row, with its grid
values and `status` = missing: a partial grid is reported, not a crash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from archbench.io import atomic_file

# Leading columns, in the order a reader scans them (the original study's first); every metric follows.
KEY_COLUMNS = ["arch", "point", "seed", "learning_rate", "embed_dim", "ffn_dim", "heads", "seq_len", "layers",
               "status"]
DROP = {"hparams", "model_config", "arch", "seed"}


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_point(point: str) -> dict:
    """{key: value} of a Paramspace instance: `k~v/k~v` (one directory per key) or `k~v_k~v` (one
    directory). Keys may hold underscores, values do not (numbers, short names): a `_` after a value
    starts the next key."""
    values = {}
    for component in point.split("/"):
        tokens = component.split("~")
        key = tokens[0]
        for i, token in enumerate(tokens[1:], start=1):
            value, _, next_key = token.partition("_") if i < len(tokens) - 1 else (token, "", "")
            values[key] = _number(value)
            key = next_key
    return values


def parse_run_path(path: str | os.PathLike) -> dict:
    """{arch, point, seed, <grid key>: value} of a per-run file path (runs/ or eval/ alike)."""
    parts = Path(path).parts[:-1]
    i = len(parts) - 1
    while i >= 0 and "~" in parts[i]:
        i -= 1
    if i < 0 or not parts[-1].startswith("seed~"):
        raise ValueError(f"not a per-run path (.../arch/key~value.../seed~N/file): {path}")
    point = "/".join(parts[i + 1:-1])
    return {"arch": parts[i], "point": point, "seed": int(parts[-1].split("~", 1)[1]), **parse_point(point)}


def run_key(path) -> tuple:
    info = parse_run_path(path)
    return info["arch"], info["point"], info["seed"]


def metrics_columns(metrics: dict) -> dict:
    """Scalar hyperparameters, then every scalar metric of one metrics.json."""
    row = {k: v for k, v in metrics.get("hparams", {}).items() if not isinstance(v, (dict, list))}
    # The FFN width actually used (it differs from the grid's when parameters are matched).
    row["ffn_dim_model"] = metrics.get("model_config", {}).get("ffn_dim")
    row.update({k: v for k, v in metrics.items() if k not in DROP and not isinstance(v, (dict, list))})
    return row


def harness_columns(data: dict) -> dict:
    """`harness/<task>/<metric>` of lm-eval results (its `results` section, or a plain {task: {metric: x}}).

    lm-eval names metrics `metric,filter`; the default filter `none` is dropped from the name.
    """
    tasks = data.get("results", data)
    out = {}
    for task, metrics in tasks.items():
        if not isinstance(metrics, dict):
            continue
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metric = name.removesuffix(",none").replace(",", ":")
                out[f"harness/{task}/{metric}"] = value
    return out


def latency_entries(data) -> list[dict]:
    """The measurements of a latency.json (its `entries` list, or the file itself when it is a list);
    entries the benchmark `skipped` (e.g. beyond a learned position table) are left out."""
    if isinstance(data, dict):
        data = next((data[k] for k in ("entries", "results", "measurements") if isinstance(data.get(k), list)), [])
    return [e for e in data if isinstance(e, dict) and "context" in e and not e.get("skipped")]


def latency_columns(data) -> dict:
    """`latency/[<mode>/]<metric>@<context>` for every numeric metric at the smallest batch size measured
    (mode: recurrent / kv_cache / recompute, when the file names one)."""
    entries = latency_entries(data)
    if not entries:
        return {}
    batch = min(e.get("batch_size", 1) for e in entries)
    out = {}
    for entry in sorted(entries, key=lambda e: (str(e.get("mode", "")), e["context"])):
        if entry.get("batch_size", 1) != batch:
            continue
        mode = f"{entry['mode']}/" if entry.get("mode") else ""
        for name, value in entry.items():
            if name not in ("context", "batch_size") and isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"latency/{mode}{name}@{entry['context']}"] = value
    return out


FLATTEN = {"harness": harness_columns, "latency": latency_columns}


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def collect(metrics_paths: list[str], extras: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per run. `extras` maps a name (harness, latency, or any other) to per-run JSON paths;
    each adds `<name>_status` (ok / missing) and its flattened columns (generic: scalar top-level keys)."""
    extras = {name: {run_key(p): p for p in paths} for name, paths in (extras or {}).items()}
    rows = []
    for path in metrics_paths:
        row = parse_run_path(path)
        metrics = _read_json(path)
        row["status"] = "ok" if metrics is not None else "missing"
        row.update(metrics_columns(metrics) if metrics is not None else {})
        row.update(parse_run_path(path))  # the path names the run, whatever the file says
        for name, paths in extras.items():
            data = _read_json(paths[key]) if (key := run_key(path)) in paths else None
            row[f"{name}_status"] = "ok" if data is not None else "missing"
            if data is not None:
                flatten = FLATTEN.get(name, lambda d: {f"{name}/{k}": v for k, v in d.items()
                                                       if isinstance(v, (int, float, str))})
                row.update(flatten(data))
        row["run_dir"] = os.path.dirname(path)
        rows.append(row)
    frame = pd.DataFrame(rows)
    lead = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame[lead + [c for c in frame.columns if c not in lead]]


def write_csv(frame: pd.DataFrame, out_csv: str) -> None:
    with atomic_file(out_csv) as tmp:
        frame.to_csv(tmp, index=False)


def write_grid_results(metrics_paths: list[str], out_csv: str, extras: dict[str, list[str]] | None = None) -> pd.DataFrame:
    frame = collect(metrics_paths, extras)
    write_csv(frame, out_csv)
    return frame
