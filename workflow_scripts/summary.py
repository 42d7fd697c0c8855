"""rule summary: the tables and plots -> summary.md (verdict, key tables, links)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.report.summary import write_summary  # noqa: E402

write_summary(
    snakemake.input.grid,
    snakemake.input.seeds,
    snakemake.input.comparison,
    [snakemake.input.curves, *snakemake.input.plots, *snakemake.input.latency],
    snakemake.output.md,
    axes=snakemake.params.axes,
    baseline=snakemake.params.baseline,
    questions_json=snakemake.input.get("questions"),
)
