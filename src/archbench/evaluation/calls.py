"""The keyword arguments of the three evaluation calls (run_harness, run_latency, run_generate), built
from a pipeline config: one builder per call, used by the rules (rules/evaluate.smk passes them to the
adapters in workflow_scripts/) and by the CLI, whose defaults are the schema's (:func:`schema_defaults`).
Torch-free: the Snakefile parse imports it."""

from __future__ import annotations

SECTIONS = ("eval", "latency", "generate")


def harness_args(config: dict) -> dict:
    e = config["eval"]
    return {
        "tasks": e["tasks"],
        "include_path": e["include_path"],
        "num_fewshot": e["num_fewshot"],
        "limit": e["limit"],
        "batch_size": e["batch_size"],
        "bootstrap_iters": e["bootstrap_iters"],
        "device": e["device"],
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
        "device": config["eval"]["device"],
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
        "device": config["eval"]["device"],
    }


def schema_defaults() -> dict:
    """The pipeline config of an empty config file, for the keys the evaluation calls read."""
    from archbench.config import load_schema

    props = load_schema()["properties"]
    config = {s: {k: v.get("default") for k, v in props[s]["properties"].items()} for s in SECTIONS}
    config["seed"] = props["seed"]["default"]
    return config
