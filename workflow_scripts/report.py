"""rule collect: every expected run's metrics.json (+ harness.json / latency.json when evaluated) ->
grid_results.csv, seed_summary.csv, comparison.csv; runs without files get status=missing."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.report.compare import write_tables  # noqa: E402

write_tables(
    snakemake.params.runs,
    snakemake.output.grid,
    snakemake.output.comparison,
    snakemake.output.seeds,
    baseline=snakemake.params.baseline,
)
