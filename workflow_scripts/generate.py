"""rule generate: one run's model/ -> text samples through generate() (samples.txt, samples.csv)."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.generate import run_generate  # noqa: E402

run_generate(
    model_dir=os.path.dirname(snakemake.input.model),
    out_txt=snakemake.output.txt,
    out_csv=snakemake.output.csv,
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.generate_args
)
