"""EleutherAI lm-evaluation-harness on a saved run: ``run_harness`` -> ``harness.json``.

Schema of ``harness.json``::

    {"results": {task: {metric: value}},   # lm-eval's metric names without the default ",none"
                                            # filter: acc, acc_stderr, acc_norm, word_perplexity,
                                            # byte_perplexity, bits_per_byte, perplexity, ...;
                                            # non-finite values are null
     "config":  {model_dir, arch, params, max_length, device, tasks, include_path, num_fewshot,
                 limit, batch_size, bootstrap_iters, seed, n_samples: {task: n}, versions: {task: v},
                 lm_eval_version, elapsed_s}}

Task names resolve against the pipeline's offline tasks (``task_dirs``, see tasks.py) and
``include_path`` first, then lm-eval's built-in tasks (their index is cached on disk: scanning
~230 folders of YAML takes seconds). Built-in tasks download their dataset from the Hugging Face
hub; offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE, as huggingface_hub reads them) a task whose dataset
is not cached fails before the model is loaded, with a message that says so.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import logging
import math
import os
import sys
from pathlib import Path

from archbench import hub
from archbench.evaluation.common import EvalError, EvalRun, arch_of, max_context
from archbench.io import atomic_file
from archbench.logs import duration, quiet_harness

LOCAL_DATASETS = {"json", "csv", "parquet", "text", "arrow", "pandas"}  # loaders of local files


def builtin_tasks() -> dict[str, dict]:
    """{name: {dataset_path, members, tags}} of lm-eval's built-in tasks, groups and tags.

    Scanning lm-eval's ~230 task folders takes seconds, so the result is cached on disk per lm-eval
    version: an unknown name or an offline hub task is then reported at once, and the full
    TaskManager is only built when a built-in task will actually run."""
    import lm_eval
    from lm_eval.tasks._index import TaskIndex

    root = Path(lm_eval.__file__).parent / "tasks"
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "archbench"
        / f"lm_eval-{getattr(lm_eval, '__version__', 'x')}-{hashlib.sha1(str(root).encode()).hexdigest()[:8]}.json"
    )
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    index = {}
    for name, entry in TaskIndex.build([root]).items():
        cfg = entry.cfg or {}
        members = cfg.get("task") if isinstance(cfg.get("task"), list) else []
        index[name] = {
            "dataset_path": cfg.get("dataset_path") if isinstance(cfg.get("dataset_path"), str) else None,
            "members": [m for m in members if isinstance(m, str)],
            "tags": sorted(entry.tags or ()),
        }
    try:
        with atomic_file(cache) as tmp:
            tmp.write_text(json.dumps(index))
    except OSError:  # a read-only home only costs the rescan next time
        pass
    return index


@functools.lru_cache(maxsize=4)
def task_manager(paths: tuple[str, ...], include_defaults: bool):
    """lm-eval's TaskManager over ``paths`` (and its built-in tasks if ``include_defaults``)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths) or None, include_defaults=include_defaults)


def resolve_tasks(tasks: list[str], task_dirs=(), include_path: str | None = None):
    """The TaskManager for ``tasks``: EvalError naming any unknown name, or hub tasks offline."""
    if not tasks:
        raise EvalError("eval.tasks is empty: name at least one lm-eval task")
    if include_path and not os.path.isdir(include_path):
        raise EvalError(f"eval.include_path {include_path!r} is not a directory")
    paths = tuple(str(Path(p).resolve()) for p in (*task_dirs, include_path) if p)
    local = task_manager(paths, include_defaults=False)
    rest = [t for t in tasks if t not in local.all_tasks and not t.endswith((".yaml", ".yml"))]
    if not rest:
        return local
    builtin = builtin_tasks()
    unknown = [t for t in rest if t not in builtin]
    if unknown:
        known = [*local.all_tasks, *builtin]
        hints = [
            f"{t!r} (did you mean {', '.join(m)}?)" if (m := difflib.get_close_matches(t, known, 3)) else repr(t)
            for t in unknown
        ]
        raise EvalError(
            f"unknown lm-eval task(s): {'; '.join(hints)}. Known: the offline tasks in "
            f"{', '.join(paths) or '(none)'}, eval.include_path YAMLs, and lm-eval's built-in "
            f"tasks (`lm_eval ls tasks`)"
        )
    check_hub_access(builtin, rest)
    return task_manager(paths, include_defaults=True)


def _offline() -> bool:
    return hub.offline()  # huggingface_hub's own settings (HF_HUB_OFFLINE ...), never a socket probe


def _cached(dataset: str) -> bool:
    """Whether a hub dataset is in the local cache (then datasets' offline mode can read it)."""
    import datasets.config
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE) / ("datasets--" + dataset.replace("/", "--"))
    return hub.is_dir() or (Path(datasets.config.HF_DATASETS_CACHE) / dataset.replace("/", "___")).is_dir()


def hub_datasets(index: dict[str, dict], tasks: list[str]) -> dict[str, str]:
    """{task: hub dataset} for the named built-in tasks (groups and tags expanded) that read from the
    Hugging Face hub rather than local files."""
    out, todo, seen = {}, list(tasks), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in index:
            continue
        seen.add(name)
        entry = index[name]
        todo += (
            entry["members"] + [n for n, e in index.items() if name in e["tags"]] if not entry["dataset_path"] else []
        )
        path = entry["dataset_path"]
        if path and path not in LOCAL_DATASETS and not os.path.exists(path):
            out[name] = path
    return out


def check_hub_access(index: dict[str, dict], tasks: list[str]) -> None:
    """Fail fast (before loading any model) when hub tasks cannot get their data."""
    needed = {t: d for t, d in hub_datasets(index, tasks).items() if not _cached(d)}
    if needed and _offline():
        listed = ", ".join(f"{t} ({d})" for t, d in sorted(needed.items()))
        raise EvalError(
            f"lm-eval task(s) {listed} download their dataset from the Hugging Face hub, "
            f"which is not reachable (offline: HF_HUB_OFFLINE/HF_DATASETS_OFFLINE set or no "
            f"network) and the data is not cached. Run once with network access, or use the "
            f"pipeline's offline tasks (archbench_ppl, archbench_cloze, archbench_lastword)."
        )


def _clean(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def flatten_results(results: dict) -> dict:
    """{task: {metric: value}} from lm-eval's ``results`` section (",none" dropped, numbers only)."""
    out = {}
    for task, metrics in results.items():
        row = {}
        for name, value in metrics.items():
            if name in ("alias", "sample_len") or isinstance(value, str):  # counts live in config;
                continue  # stderr may be "N/A"
            row[name.removesuffix(",none")] = _clean(value)
        out[task] = row
    return out


def run_harness(
    model_dir: str,
    out_json: str | None,
    tasks: list[str],
    task_dirs=(),
    include_path=None,
    num_fewshot: int | None = None,
    limit: int | float | None = None,
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "fp32",
    bootstrap_iters: int = 100,
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Evaluate the model saved in ``model_dir`` on lm-eval ``tasks``; write ``out_json`` (schema in
    the module docstring) and return it."""
    arguments = dict(locals())
    tm = resolve_tasks(list(tasks), task_dirs, include_path)  # before the model: fail fast
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    with quiet_harness(), EvalRun("harness", arguments) as run:  # no progress bars in a log, from the model load on
        model, tokenizer = run.model, run.tokenizer
        max_length = max_context(model)  # score within the trained context
        # Training packs documents as "ids </s> ids </s>": </s> is the start-of-document token the
        # model knows (its <s> was never trained), so it is the prefix of rolling loglikelihoods.
        lm = HFLM(
            pretrained=model,
            tokenizer=tokenizer,
            batch_size=batch_size,
            max_length=max_length,
            prefix_token_id=tokenizer.eos_token_id,
        )
        logging.getLogger(__name__).info("lm-eval: tasks %s, limit %s", ", ".join(tasks), limit)
        try:  # lm-eval print()s progress notes: keep stdout for results (CLI), notes go to the log
            with contextlib.redirect_stdout(sys.stderr):
                out = lm_eval.simple_evaluate(
                    model=lm,
                    tasks=list(tasks),
                    task_manager=tm,
                    num_fewshot=num_fewshot,
                    limit=limit,
                    bootstrap_iters=bootstrap_iters,
                    log_samples=False,
                    random_seed=seed,
                    numpy_random_seed=seed,
                    torch_random_seed=seed,
                    fewshot_random_seed=seed,
                )
        except AssertionError as err:  # lm-eval's only check that a continuation fits the context
            raise EvalError(
                f"lm-eval failed an internal check ({err or 'assertion'}): most likely an "
                f"answer/continuation of one of {list(tasks)} is longer than the model's "
                f"context ({max_length} tokens, its trained seq_len)"
            ) from err
        config = {
            "model_dir": os.path.abspath(model_dir),
            "arch": arch_of(model),
            "params": run.params,
            "max_length": max_length,
            "device": str(run.device),
            "tasks": list(tasks),
            "include_path": include_path,
            "task_dirs": [os.path.abspath(d) for d in task_dirs],
            "num_fewshot": num_fewshot,
            "limit": limit,
            "batch_size": batch_size,
            "bootstrap_iters": bootstrap_iters,
            "seed": seed,
            "n_samples": {t: n.get("effective") for t, n in out.get("n-samples", {}).items()},
            "versions": dict(out.get("versions", {})),
            "lm_eval_version": getattr(lm_eval, "__version__", None),
            "elapsed_s": round(run.elapsed_s, 2),
        }
        logging.getLogger(__name__).info("lm-eval: done in %s (%s)", duration(config["elapsed_s"]), config["n_samples"])
        return run.finish({"results": flatten_results(out["results"]), "config": config})
