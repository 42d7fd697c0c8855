"""rule summary: the tables and plots -> summary.md (verdict, key tables, links)."""

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

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
