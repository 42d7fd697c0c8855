"""How an evaluation's file becomes columns of the report's grid table (an entry's ``flatten`` in
archbench.evaluation.registry). Torch-free: the Snakefile parse and the collect job import it."""

from __future__ import annotations

from archbench.provenance import worst_flag


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
            if (
                name not in ("context", "batch_size")
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
            ):
                out[f"latency/{mode}{name}@{entry['context']}"] = value
    out["latency/timing_flag"] = worst_flag(e.get("timing_flag") for e in entries)
    return out
