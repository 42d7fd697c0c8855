"""rule latency: one run's model/ -> prefill / per-token decode time and memory vs context (latency.json)."""
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.latency import run_latency  # noqa: E402

cfg = snakemake.params.latency
run_latency(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    contexts=cfg["contexts"],
    batch_sizes=cfg["batch_sizes"],
    new_tokens=cfg["new_tokens"],
    trials=cfg["trials"],
    warmup=cfg["warmup"],
    recompute_max_context=cfg["recompute_max_context"],
    device=snakemake.params.device,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
