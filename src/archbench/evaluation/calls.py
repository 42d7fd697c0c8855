"""The keyword arguments of every evaluation call, built from a pipeline config: one builder per
evaluation (``<name>_args(config) -> dict``, named by its entry in evaluation/registry.py), used by
the rules (rules/evaluate.smk passes them to the adapters in workflow_scripts/) and by the CLI, whose
defaults are the schema's (:func:`archbench.config.schema_defaults`). Every call gets the evaluation device and dtype
(``eval.device``, ``eval.dtype``). Torch-free: the Snakefile parse imports it."""

from __future__ import annotations


def _run_on(config: dict) -> dict:
    """Where every evaluation runs: ``eval.device`` and ``eval.dtype``."""
    return {"device": config["eval"]["device"], "dtype": config["eval"]["dtype"]}


def harness_args(config: dict) -> dict:
    e = config["eval"]
    return {
        "tasks": e["tasks"],
        "include_path": e["include_path"],
        "num_fewshot": e["num_fewshot"],
        "limit": e["limit"],
        "batch_size": e["batch_size"],
        "bootstrap_iters": e["bootstrap_iters"],
        **_run_on(config),
        "seed": config["seed"],
    }


def latency_args(config: dict) -> dict:
    lat = config["latency"]
    return {
        "contexts": lat["contexts"],
        "batch_sizes": lat["batch_sizes"],
        "new_tokens": lat["new_tokens"],
        "trials": lat["trials"],
        "warmup": lat["warmup"],
        "recompute_max_context": lat["recompute_max_context"],
        **_run_on(config),
        "seed": config["seed"],
    }


def generate_args(config: dict) -> dict:
    g = config["generate"]
    return {
        "prompts": g["prompts"],
        "max_new_tokens": g["max_new_tokens"],
        "do_sample": g["do_sample"],
        "temperature": g["temperature"],
        "top_p": g["top_p"],
        "top_k": g["top_k"],
        "seed": g["seed"],
        **_run_on(config),
    }


def length_args(config: dict) -> dict:
    n = config["length"]
    return {
        "multipliers": n["multipliers"],
        "max_tokens": n["max_tokens"],
        "batch_size": n["batch_size"],
        **_run_on(config),
    }


def throughput_args(config: dict) -> dict:
    lat = config["latency"]
    return {
        "batch_sizes": lat["batch_sweep"],
        "context": lat["batch_context"],
        "new_tokens": lat["new_tokens"],
        "trials": lat["trials"],
        "warmup": lat["warmup"],
        **_run_on(config),
        "seed": config["seed"],
    }


def recall_args(config: dict) -> dict:
    return {"mqar_cfg": config["data"]["mqar"], **_run_on(config)}


def retrieval_args(config: dict) -> dict:
    r, m = config["retrieval"], config["data"]["mqar"]
    return {
        "multipliers": r["multipliers"],
        "tasks": r["tasks"],
        "examples": r["examples"],
        "seed": r["seed"],
        "batch_size": r["batch_size"],
        "vocab_size": m["vocab_size"],  # the tasks' words are the run's MQAR vocabulary
        "random_fillers": m["random_fillers"],  # and its filler
        **_run_on(config),
    }
