"""rule plots: the tables and each run's CSV log -> loss curves per grid point, loss vs parameters,
difference heat map, throughput, emissions (PNG + SVG)."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.report.plots import plot_all  # noqa: E402

plot_all(
    snakemake.input.grid,
    snakemake.input.seeds,
    snakemake.input.comparison,
    os.path.dirname(snakemake.output.loss_vs_params),
    snakemake.output.curves,
    axes=snakemake.params.axes,
    baseline=snakemake.params.baseline,
)
