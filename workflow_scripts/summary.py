"""rule summary: the tables and plots -> summary.md (verdict, key tables, links), and summary.md and the
tables as HTML pages for the HTML report."""

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

from archbench.report.html import write_markdown_page, write_tables_page  # noqa: E402

write_markdown_page(snakemake.output.md, snakemake.output.html)
write_tables_page(
    {
        "Per-point comparison": snakemake.input.comparison,
        "Mean over seeds per architecture and grid point": snakemake.input.seeds,
        "Every run": snakemake.input.grid,
    },
    snakemake.output.tables,
)
