"""rule plot_latency: every run's latency.json -> decode latency and state memory vs context."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.report.plots import plot_latency  # noqa: E402

plot_latency(snakemake.params.runs, os.path.dirname(snakemake.output.decode), seeds_csv=snakemake.input.seeds)
