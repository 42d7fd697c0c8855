"""rule train: one architecture x grid point x seed -> model/, logs/, metrics.json, emissions.csv."""

from archbench.locks import one_writer
from archbench.logs import job_logging, log_start
from archbench.training import cluster

one_writer(snakemake)  # noqa: F821 - one job per run, even beside an orphan of a killed Snakemake
job_logging(snakemake, stderr=False)  # timestamped records; run_train_job points stderr at the log

p = snakemake.params  # noqa: F821
cluster.run_train_job(
    cluster.train_args(snakemake.wildcards, snakemake.input, snakemake.output, snakemake.threads, p),  # noqa: F821
    snakemake.log[0],  # noqa: F821
    on_start=lambda: log_start(snakemake),  # noqa: F821  (the log exists from here)
)
