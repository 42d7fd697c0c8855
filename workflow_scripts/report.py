"""rule collect: every expected run's metrics.json (+ harness.json / latency.json when evaluated) ->
grid_results.csv, seed_summary.csv, comparison.csv; runs without files get status=missing."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.report.compare import write_tables  # noqa: E402

write_tables(
    snakemake.params.runs,
    snakemake.output.grid,
    snakemake.output.comparison,
    snakemake.output.seeds,
    baseline=snakemake.params.baseline,
)
