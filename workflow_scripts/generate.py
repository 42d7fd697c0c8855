"""rule generate: one run's model/ -> text samples through generate() (samples.txt, samples.csv)."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.generate import run_generate  # noqa: E402

run_generate(
    model_dir=os.path.dirname(snakemake.input.model),
    out_txt=snakemake.output.txt,
    out_csv=snakemake.output.csv,
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.generate_args
)
