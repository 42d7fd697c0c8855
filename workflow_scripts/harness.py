"""rule harness: one run's model/ -> lm-evaluation-harness scores (harness.json)."""
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.harness import run_harness  # noqa: E402

cfg = snakemake.params.eval
run_harness(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    tasks=cfg["tasks"],
    task_dirs=[os.path.dirname(snakemake.input.tasks[0])],
    include_path=cfg["include_path"],
    num_fewshot=cfg["num_fewshot"],
    limit=cfg["limit"],
    batch_size=cfg["batch_size"],
    bootstrap_iters=cfg["bootstrap_iters"],
    device=cfg["device"],
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
