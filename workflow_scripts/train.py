"""rule train: one architecture x grid point x seed -> model/, logs/, metrics.json, emissions.csv."""
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.training import train_run  # noqa: E402

train_run(
    arch=snakemake.wildcards.arch,
    seed=int(snakemake.wildcards.seed),
    settings=snakemake.params.settings,
    tokens={s: snakemake.input[s] for s in ("train", "validation", "test")},
    tokenizer_dir=os.path.dirname(snakemake.input.tokenizer),
    run_dir=os.path.dirname(snakemake.output.metrics),
    scratch_dir=snakemake.params.scratch,
    emissions=snakemake.params.emissions,
    threads=snakemake.threads,
)
