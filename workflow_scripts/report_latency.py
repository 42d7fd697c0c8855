"""rule plot_latency: every run's latency.json -> decode latency and state memory vs context."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.report.plots import plot_latency  # noqa: E402

plot_latency(snakemake.params.runs, os.path.dirname(snakemake.output.decode), seeds_csv=snakemake.input.seeds)
