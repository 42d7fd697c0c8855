"""rule collect: every run's metrics.json (+ harness.json / latency.json when evaluated) ->
grid_results.csv, seed_summary.csv, comparison.csv."""
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.report.compare import write_tables  # noqa: E402

write_tables(snakemake.input.metrics, snakemake.output.grid, snakemake.output.comparison, snakemake.output.seeds,
             extras={k: list(snakemake.input[k]) for k in ("harness", "latency") if len(snakemake.input[k])})
