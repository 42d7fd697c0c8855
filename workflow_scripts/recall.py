"""rule recall: one run's model/ (trained on data.source mqar) -> recall accuracy per number of pairs."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.recall import run_recall  # noqa: E402

run_recall(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.recall_args
)
